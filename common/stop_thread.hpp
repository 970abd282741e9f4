#pragma once
// Stopping a thread that waits on a condition variable between pieces of work (the sync
// scheduler, the doctor reporter).
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dinodia::threads {

// Sets `stopping` under `mutex`, wakes `cv`, and waits at most `timeout` for the thread to set
// `finished` (under the same mutex, then notifying `cv`). A thread that finished is joined. One
// that did not (a blocking request still within its own timeout) keeps running and its handle is
// given up, not detached (a detach can race the thread's exit: start_detached explains); the
// caller is about to end the process. Returns whether the thread finished.
bool stop_thread(std::thread& thread, std::mutex& mutex, std::condition_variable& cv,
                 bool& stopping, const bool& finished, std::chrono::milliseconds timeout);

}  // namespace dinodia::threads
