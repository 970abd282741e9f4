// threads::start_detached (common/detached_thread): work runs exactly once on its own thread and
// what it captured is released when it ends. The glibc race it avoids (pthread_detach reading a
// descriptor freed by a thread that already ended) cannot be forced from a test; this churns
// through many threads that end at once, the pattern that met it.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/detached_thread.hpp"

using namespace std::chrono_literals;

TEST_CASE("start_detached runs each piece of work once, on another thread, and releases it") {
  constexpr int kThreads = 2000;
  std::mutex mutex;
  std::condition_variable all_done;
  int finished = 0;
  std::atomic<int> on_caller_thread{0};
  const auto caller = std::this_thread::get_id();
  auto token = std::make_shared<int>(7);  // every closure holds a copy until its thread ends
  for (int i = 0; i < kThreads; ++i) {
    const bool started = dinodia::threads::start_detached([&, token] {
      if (std::this_thread::get_id() == caller) ++on_caller_thread;
      std::lock_guard lock(mutex);
      if (++finished == kThreads) all_done.notify_all();
    });
    REQUIRE(started);
  }
  {
    std::unique_lock lock(mutex);
    REQUIRE(all_done.wait_for(lock, 30s, [&] { return finished == kThreads; }));
  }
  CHECK(on_caller_thread == 0);
  // The closures (and their copies of `token`) are destroyed as their threads end.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (token.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  CHECK(token.use_count() == 1);
}

TEST_CASE("start_detached: an exception in the work ends only that thread") {
  std::atomic<bool> after{false};
  REQUIRE(dinodia::threads::start_detached([] { throw std::runtime_error("boom"); }));
  REQUIRE(dinodia::threads::start_detached([&] { after = true; }));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!after && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  CHECK(after);  // the process is still here, and so is the next thread's work
}
