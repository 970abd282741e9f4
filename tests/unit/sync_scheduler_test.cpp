// agent/SyncScheduler and SyncDelays: cadence and back-off bounds
// (docs/platform-protocol.md#errors: 5, 10, 20, 40, 80 s with jitter down to half, then the regular
// cadence), and a prompt stop().
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/platform_sync.hpp"
#include "agent/state_store.hpp"
#include "agent/sync_scheduler.hpp"
#include "ha_bridge/token_registry.hpp"
#include "platform_client/transport.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using std::chrono::milliseconds;

namespace {
// The scheduler needs a PlatformSync; these tests never let a cycle run against it except the
// stop test, which points it at a port nothing listens on.
struct Fixture {
  dinodia::testing::TempDir dir;
  StateStore store{StateStore::default_path(dir.path())};
  dinodia::ha_bridge::TokenRegistry tokens;
  std::unique_ptr<dinodia::platform_client::Transport> transport =
      dinodia::platform_client::make_http_transport({});
  PlatformSync sync{
      {"HUB-1", "boot", "http://127.0.0.1:9", "", ""}, store, nullptr, tokens, *transport};
};
}  // namespace

TEST_CASE("regular cadence: interval plus 0-60 s jitter - minimum 2 minutes", "[scheduler]") {
  Fixture f;
  auto s = schedule_settings(1, std::nullopt);
  CHECK(s.interval == milliseconds(120000));
  CHECK(schedule_settings(10, std::nullopt).interval == milliseconds(600000));
  SyncScheduler sched(f.sync, s);
  for (int i = 0; i < 200; ++i) {
    auto d = sched.next_delay(CycleOutcome::ok, 0);
    CHECK(d >= milliseconds(120000));
    CHECK(d < milliseconds(180000));
  }
}

TEST_CASE("environment override: N seconds - no jitter", "[scheduler]") {
  Fixture f;
  auto s = schedule_settings(2, 5);
  CHECK(s.interval == milliseconds(5000));
  CHECK(s.first_max <= milliseconds(1000));
  SyncScheduler sched(f.sync, s);
  CHECK(sched.next_delay(CycleOutcome::ok, 0) == milliseconds(5000));
}

TEST_CASE("back-off: 5, 10, 20, 40, 80 s with jitter down to half - then the regular cadence",
          "[scheduler]") {
  Fixture f;
  SyncScheduler sched(f.sync, schedule_settings(2, std::nullopt));
  milliseconds min1{milliseconds::max()}, max1{0}, min5{milliseconds::max()}, max5{0};
  for (int i = 0; i < 500; ++i) {
    auto d1 = sched.next_delay(CycleOutcome::retry, 1);
    CHECK(d1 >= milliseconds(2500));
    CHECK(d1 <= milliseconds(5000));
    min1 = std::min(min1, d1);
    max1 = std::max(max1, d1);
    auto d3 = sched.next_delay(CycleOutcome::auth, 3);
    CHECK(d3 >= milliseconds(10000));
    CHECK(d3 <= milliseconds(20000));
    auto d5 = sched.next_delay(CycleOutcome::unknown_hub, 5);
    CHECK(d5 >= milliseconds(40000));
    CHECK(d5 <= milliseconds(80000));
    min5 = std::min(min5, d5);
    max5 = std::max(max5, d5);
    // 5 s * 2^5 = 160 s is past the interval: the regular cadence, as after a success
    // (bench/README.md#fleet-simulation: capping the back-off at the interval kept a fleet in
    // a long outage at 2.8x its steady rate).
    for (int failures : {6, 7, 40}) {
      auto d = sched.next_delay(CycleOutcome::retry, failures);
      CHECK(d >= milliseconds(120000));
      CHECK(d < milliseconds(180000));
    }
  }
  // Jitter spreads each step over its range.
  CHECK(max1 - min1 > milliseconds(1500));
  CHECK(max5 - min5 > milliseconds(25000));
}

TEST_CASE("the legacy timing (back_off = false) waits a regular interval after a failure",
          "[scheduler]") {
  auto s = schedule_settings(2, std::nullopt);
  s.back_off = false;
  SyncDelays delays(s, 20);
  for (int i = 0; i < 200; ++i) {
    auto d = delays.after_cycle(CycleOutcome::retry);
    CHECK(d >= milliseconds(120000));
    CHECK(d < milliseconds(180000));
  }
}

TEST_CASE("after_cycle counts consecutive failures - a success resets the count", "[scheduler]") {
  SyncDelays delays(schedule_settings(2, std::nullopt), 20);
  CHECK(delays.after_cycle(CycleOutcome::retry) <= milliseconds(5000));   // 1st failure
  CHECK(delays.after_cycle(CycleOutcome::retry) <= milliseconds(10000));  // 2nd
  CHECK(delays.after_cycle(CycleOutcome::retry) >= milliseconds(10000));  // 3rd: 10-20 s
  CHECK(delays.after_cycle(CycleOutcome::ok) >= milliseconds(120000));    // success
  CHECK(delays.after_cycle(CycleOutcome::retry) <= milliseconds(5000));   // 1st again
}

TEST_CASE("stop wakes a waiting scheduler promptly", "[scheduler]") {
  Fixture f;
  SyncScheduler sched(f.sync, schedule_settings(2, std::nullopt));
  sched.start(milliseconds(60000));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(sched.stop(milliseconds(2000)));
  CHECK(std::chrono::steady_clock::now() - t0 < milliseconds(500));
}

TEST_CASE("first cycle runs and is observable - failures do not stop the loop", "[scheduler]") {
  Fixture f;
  SyncScheduler sched(f.sync, schedule_settings(2, 1));
  sched.start(milliseconds(0));
  CHECK(sched.wait_first_cycle(milliseconds(20000)));
  // The cycle failed (nothing listens): recorded in history as a transport failure.
  auto history = f.store.recent_attempts(10);
  REQUIRE_FALSE(history.empty());
  CHECK(history.front().operation == "pair");
  CHECK(history.front().status == "transport");
  CHECK(sched.stop(milliseconds(20000)));
}

namespace {
// The process's private resident memory (heap and stacks), KiB.
long rss_anon_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "RssAnon:") {
      status >> value;
      return value;
    }
    status.ignore(1 << 10, '\n');
  }
  return -1;
}
}  // namespace

// AddressSanitizer's allocator keeps freed blocks in its quarantine and ignores malloc_trim: RSS
// says nothing about glibc's heap in that build. The plain build (scripts/test.sh) checks it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsGlibcHeap = false;
#else
constexpr bool kRssIsGlibcHeap = true;
#endif

TEST_CASE("what a cycle freed goes back to the system after the cycle", "[scheduler][memory]") {
  // The observer runs on the sync thread at the end of a cycle: it fills 8 MiB in 4 KiB blocks,
  // keeps the last one (so the freed pages are not the top of the heap, which glibc would return
  // by itself), and frees the rest, as a cycle's CA store and JSON are freed below what outlives
  // the cycle. Only a trim returns those pages (bench/README.md, "Home configuration memory").
  Fixture f;
  constexpr int kBlocks = 2048;
  constexpr std::size_t kBlock = 4096;
  std::atomic<long> freed_at{-1};
  void* pin = nullptr;
  SyncScheduler sched(f.sync, schedule_settings(2, 3600));
  sched.set_cycle_observer([&](const CycleResult&) {
    if (freed_at.load() >= 0) return;
    std::vector<void*> blocks;
    for (int i = 0; i <= kBlocks; ++i) {
      blocks.push_back(std::malloc(kBlock));
      std::memset(blocks.back(), 1, kBlock);
    }
    // The last block, carved from the top of the heap after the others, stays.
    pin = blocks.back();
    blocks.pop_back();
    for (void* b : blocks) std::free(b);
    freed_at = rss_anon_kib();
  });
  sched.start(milliseconds(0));
  REQUIRE(sched.wait_first_cycle(milliseconds(20000)));
  long now = rss_anon_kib();
  for (int i = 0; i < 50 && freed_at.load() - now < 2 * 1024 && kRssIsGlibcHeap; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    now = rss_anon_kib();
  }
  INFO("RssAnon right after the frees " << freed_at.load() << " KiB, after the cycle " << now
                                        << " KiB");
  if (kRssIsGlibcHeap) CHECK(freed_at.load() - now >= 2 * 1024);
  CHECK(sched.stop(milliseconds(20000)));
  std::free(pin);
}
