#include "lrcore/parallel.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace lrcore {

namespace {

// Starting and joining a thread costs tens of microseconds (more on a loaded machine),
// and a second thread only pays when the work left is several times that.
std::atomic<double> g_share_threshold{2e-4};

}  // namespace

int resolve_num_threads(int num_threads) {
    if (num_threads > 0) return num_threads;
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware == 0 ? 1 : static_cast<int>(hardware);
}

double share_threshold_seconds() { return g_share_threshold.load(std::memory_order_relaxed); }

void set_share_threshold_seconds(double seconds) {
    g_share_threshold.store(seconds, std::memory_order_relaxed);
}

void parallel_for(Index num_tasks, int num_threads,
                  const std::function<void(Index, Index, const StopFlag&)>& body,
                  const InterruptPoll& poll, bool share_at_once) {
    if (num_tasks <= 0) return;
    const Index workers = std::min<Index>(resolve_num_threads(num_threads), num_tasks);

    StopFlag stop(&poll);
    std::atomic<Index> next_task{0};
    std::mutex mutex;
    std::condition_variable all_done;
    Index running = 0;  // helper threads still working
    std::exception_ptr first_error;
    std::vector<std::thread> helpers;

    auto record_error = [&] {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::current_exception();
        stop.request();
    };
    auto helper = [&](Index worker) {
        try {
            while (!stop.requested()) {
                const Index task = next_task.fetch_add(1);
                if (task >= num_tasks) break;
                body(task, worker, stop);
            }
        } catch (...) {
            record_error();
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (--running == 0) all_done.notify_all();
    };
    auto start_helpers = [&] {
        helpers.reserve(static_cast<std::size_t>(workers - 1));
        for (Index i = 1; i < workers; ++i) {
            {
                std::lock_guard<std::mutex> lock(mutex);
                ++running;
            }
            try {
                helpers.emplace_back(helper, i);
            } catch (...) {  // no more threads: the others (or this one) do the work
                std::lock_guard<std::mutex> lock(mutex);
                --running;
                break;
            }
        }
    };

    if (workers > 1 && share_at_once) start_helpers();
    const auto start = std::chrono::steady_clock::now();
    try {
        Index done = 0;
        while (!stop.requested()) {
            const Index task = next_task.fetch_add(1);
            if (task >= num_tasks) break;
            body(task, 0, stop);
            ++done;
            if (helpers.empty() && workers > 1 && task + 1 < num_tasks) {
                // The tasks run so far predict the time of the rest.
                const std::chrono::duration<double> spent =
                    std::chrono::steady_clock::now() - start;
                const double left = spent.count() / static_cast<double>(done) *
                                    static_cast<double>(num_tasks - task - 1);
                if (left > share_threshold_seconds()) start_helpers();
            }
            stop.poll_if_due();
        }
    } catch (...) {
        record_error();
    }

    {
        std::unique_lock<std::mutex> lock(mutex);
        while (running > 0) {
            all_done.wait_for(lock, StopFlag::kPollInterval);
            if (running > 0) {
                lock.unlock();
                stop.poll_now();
                lock.lock();
            }
        }
    }
    for (auto& thread : helpers) thread.join();

    if (stop.interrupted()) throw Interrupted();
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace lrcore
