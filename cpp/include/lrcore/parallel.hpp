// Work sharing over independent tasks, with cooperative cancellation (Ctrl-C).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "lrcore/blas.hpp"
#include "lrcore/errors.hpp"

namespace lrcore {

// Returns true when the caller wants the call to stop (checks for Ctrl-C).
using InterruptPoll = std::function<bool()>;

// Shared by the workers of one call: set when the call must stop early. The thread that
// runs parallel_for works on tasks too, and polls for Ctrl-C from inside them: its
// throw_if_requested calls the poll at most every kPollInterval.
class StopFlag {
public:
    static constexpr std::chrono::milliseconds kPollInterval{50};

    StopFlag() = default;
    // Polls with `poll` (may be null or empty) from the calling thread only.
    explicit StopFlag(const InterruptPoll* poll)
        : poll_(poll != nullptr && *poll ? poll : nullptr),
          poller_(std::this_thread::get_id()),
          last_poll_(std::chrono::steady_clock::now()) {}
    StopFlag(const StopFlag&) = delete;
    StopFlag& operator=(const StopFlag&) = delete;

    bool requested() const { return flag_.load(std::memory_order_relaxed); }
    void request() { flag_.store(true, std::memory_order_relaxed); }
    // Long loops call this between steps; it unwinds the worker.
    void throw_if_requested() const {
        if (poll_ != nullptr) poll_if_due();
        if (requested()) throw Interrupted();
    }
    // On the polling thread, when kPollInterval has passed since the last poll: polls, and
    // requests the stop when the poll says so. Elsewhere, or when not due: nothing.
    void poll_if_due() const {
        if (poll_ == nullptr || std::this_thread::get_id() != poller_) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_poll_ < kPollInterval) return;
        poll_now();
    }
    // On the polling thread: polls now (unless a stop was already requested).
    void poll_now() const {
        if (poll_ == nullptr || requested() || std::this_thread::get_id() != poller_) return;
        if ((*poll_)()) {
            interrupted_.store(true, std::memory_order_relaxed);
            flag_.store(true, std::memory_order_relaxed);
        }
        last_poll_ = std::chrono::steady_clock::now();
    }
    // Whether a poll asked for the stop.
    bool interrupted() const { return interrupted_.load(std::memory_order_relaxed); }

private:
    mutable std::atomic<bool> flag_{false};
    mutable std::atomic<bool> interrupted_{false};
    const InterruptPoll* poll_ = nullptr;
    std::thread::id poller_;
    mutable std::chrono::steady_clock::time_point last_poll_;
};

// Runs body(task, worker, stop) for every task in [0, num_tasks) on up to num_threads
// threads (<= 0: all hardware threads); worker in [0, threads) names the thread, so a
// body can keep per-thread scratch. The calling thread is worker 0: it takes tasks
// itself, and starts the other workers only when the work is worth sharing, at once
// when `share_at_once` says so, else once the tasks it has run predict that the rest
// takes longer than share_threshold_seconds() (small calls start no thread). Which
// tasks run on which worker never changes what they compute.
// The calling thread polls every ~50 ms (from inside its tasks, through
// StopFlag::throw_if_requested, and while it waits for the others); when poll returns
// true the workers stop at their next check and Interrupted is thrown. The first
// exception thrown by a task stops the others and is rethrown here.
void parallel_for(Index num_tasks, int num_threads,
                  const std::function<void(Index, Index, const StopFlag&)>& body,
                  const InterruptPoll& poll, bool share_at_once = false);

// Number of worker threads used for num_threads (<= 0 means all hardware threads).
int resolve_num_threads(int num_threads);

// Predicted seconds of remaining work above which parallel_for starts worker threads.
double share_threshold_seconds();
// Changes it (tests: 0 starts threads for any work, a huge value never).
void set_share_threshold_seconds(double seconds);

}  // namespace lrcore
