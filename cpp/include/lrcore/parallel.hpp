// Work sharing over independent tasks, with cooperative cancellation (Ctrl-C).
#pragma once

#include <atomic>
#include <functional>

#include "lrcore/blas.hpp"
#include "lrcore/errors.hpp"

namespace lrcore {

// Shared by the workers of one call: set when the call must stop early.
class StopFlag {
public:
    bool requested() const { return flag_.load(std::memory_order_relaxed); }
    void request() { flag_.store(true, std::memory_order_relaxed); }
    // Long loops call this between steps; it unwinds the worker.
    void throw_if_requested() const {
        if (requested()) throw Interrupted();
    }

private:
    std::atomic<bool> flag_{false};
};

// Returns true when the caller wants the call to stop (checks for Ctrl-C).
using InterruptPoll = std::function<bool()>;

// Runs body(task, worker, stop) for every task in [0, num_tasks) on num_threads worker
// threads (<= 0: all hardware threads); worker in [0, threads) names the thread, so a body
// can keep per-thread scratch. The calling thread waits and calls poll every ~50 ms;
// when poll returns true the workers stop at their next check and Interrupted is thrown.
// The first exception thrown by a task stops the others and is rethrown here.
void parallel_for(Index num_tasks, int num_threads,
                  const std::function<void(Index, Index, const StopFlag&)>& body,
                  const InterruptPoll& poll);

// Number of worker threads used for num_threads (<= 0 means all hardware threads).
int resolve_num_threads(int num_threads);

}  // namespace lrcore
