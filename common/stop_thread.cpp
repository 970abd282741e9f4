#include "common/stop_thread.hpp"

#include <utility>

namespace dinodia::threads {

bool stop_thread(std::thread& thread, std::mutex& mutex, std::condition_variable& cv,
                 bool& stopping, const bool& finished, std::chrono::milliseconds timeout) {
  if (!thread.joinable()) return true;
  bool done;
  {
    std::unique_lock lock(mutex);
    stopping = true;
    cv.notify_all();
    done = cv.wait_for(lock, timeout, [&finished] { return finished; });
  }
  if (done) {
    thread.join();
  } else {
    // Never joined, never destroyed (a joinable std::thread terminates the process when
    // destroyed): the process ends first.
    new std::thread(std::move(thread));  // NOLINT(cppcoreguidelines-owning-memory)
  }
  return done;
}

}  // namespace dinodia::threads
