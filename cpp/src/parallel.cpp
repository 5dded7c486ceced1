#include "lrcore/parallel.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace lrcore {

int resolve_num_threads(int num_threads) {
    if (num_threads > 0) return num_threads;
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware == 0 ? 1 : static_cast<int>(hardware);
}

void parallel_for(Index num_tasks, int num_threads,
                  const std::function<void(Index, Index, const StopFlag&)>& body,
                  const InterruptPoll& poll) {
    if (num_tasks <= 0) return;
    const Index workers = std::min<Index>(resolve_num_threads(num_threads), num_tasks);

    StopFlag stop;
    std::atomic<Index> next_task{0};
    std::mutex mutex;
    std::condition_variable all_done;
    Index running = workers;
    std::exception_ptr first_error;

    auto work = [&](Index worker) {
        try {
            while (!stop.requested()) {
                const Index task = next_task.fetch_add(1);
                if (task >= num_tasks) break;
                body(task, worker, stop);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            if (!first_error) first_error = std::current_exception();
            stop.request();
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (--running == 0) all_done.notify_all();
    };

    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(workers));
    for (Index i = 0; i < workers; ++i) threads.emplace_back(work, i);

    bool interrupted = false;
    {
        std::unique_lock<std::mutex> lock(mutex);
        while (running > 0) {
            all_done.wait_for(lock, std::chrono::milliseconds(50));
            if (running > 0 && poll && !interrupted) {
                lock.unlock();
                interrupted = poll();
                if (interrupted) stop.request();
                lock.lock();
            }
        }
    }
    for (auto& thread : threads) thread.join();

    if (interrupted) throw Interrupted();
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace lrcore
