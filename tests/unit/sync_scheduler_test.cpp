// agent/SyncScheduler: cadence and back-off bounds (docs/compatibility.md#sync-cadence: exponential
// back-off with full jitter capped at the interval), and a prompt stop().
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

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

TEST_CASE("back-off grows exponentially with full jitter and is capped", "[scheduler]") {
  Fixture f;
  SyncScheduler sched(f.sync, schedule_settings(2, std::nullopt));
  milliseconds max1{0}, max6{0};
  for (int i = 0; i < 500; ++i) {
    auto d1 = sched.next_delay(CycleOutcome::retry, 1);
    CHECK(d1 >= milliseconds(1000));
    CHECK(d1 <= milliseconds(5000));
    max1 = std::max(max1, d1);
    auto d6 = sched.next_delay(CycleOutcome::unknown_hub, 6);
    CHECK(d6 <= milliseconds(120000));  // 5 s * 2^5 = 160 s, capped at the interval
    max6 = std::max(max6, d6);
    CHECK(sched.next_delay(CycleOutcome::auth, 40) <= milliseconds(120000));
  }
  CHECK(max6 > max1);
  CHECK(max6 > milliseconds(60000));  // full jitter reaches high into the range
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
