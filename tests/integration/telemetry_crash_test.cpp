// Electric usage and kill -9 (docs/compatibility.md#usage-files): an on/off change and an area
// change are written through to the usage store before the agent logs them as recorded, so a
// SIGKILL right after either one cannot lose it. The heating equivalent lives in
// telemetry_test.cpp.
//
// Why the numbers below can only come out right if the change was durable:
//  * The first run has platform sync disabled and the poll at 3600 s, so after the seeding's own
//    save the ONLY save that can happen is the write-through (a state change never arms the
//    1 s batched save). With the write-through gone, the store would still hold the seeded state
//    when the agent is killed.
//  * fake_ha keeps the state an event carried (/_fake/event upserts it), and every start seeds
//    each electric entity from its REST state with time = last_updated. Left alone, the restart
//    would rediscover the change from that state and hide a lost write. So while the agent is
//    down the entity gets a later last_updated (an attribute-only update, last_changed kept):
//    the seed then only proves what the store held.
#include <httplib.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kHubToken = "crash-hub-token-7d4a";
const std::string kSupervisorToken = "supervisor-secret-crash-e25b";
const std::string kSerial = "HUB-TELEMETRY-CRASH-1";
const std::string kBootstrap = "bootstrap-secret-crash-90fa";
const std::string kEntity = "switch.kettle";
const std::string kRecorded = "Usage state change recorded { entityId: 'switch.kettle' }";

// Every 200 ms until `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  return wait_until(condition, timeout, std::chrono::milliseconds(200));
}

std::string iso(std::int64_t ms_value) {
  return dinodia::clock::iso8601_from_millis(ms_value);
}

std::int64_t ms(const json& iso_value) {
  return dinodia::clock::parse_iso8601_millis(iso_value.get<std::string>()).value_or(-1);
}

// fake_ha (30 stock entities, replaced by the registry each test sets), fake_platform and the
// agent in one temp dir. A trimmed copy of telemetry_test.cpp's Stack.
class Stack {
 public:
  Stack()
      : fake_(dir_, kSupervisorToken, 30),
        platform_(dir_, kSerial, kBootstrap, FakePlatformOptions{"", false, {}}),
        agent_(
            {dir_.path(),
             "",
             fake_.url(),
             kSupervisorToken,
             {{"DINODIA_SYNC_INTERVAL_SECONDS", "1"}, {"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}},
             30s}) {}

  // Electric tracking only, debug log (for the "recorded" line); `sync` turns platform sync on.
  void start_agent(bool sync) {
    json options = {{"port", 0},
                    {"hub_tokens", json::array({kHubToken})},
                    {"log_level", "debug"},
                    {"heating_usage_tracking_enabled", false},
                    {"electric_usage_tracking_enabled", true},
                    {"platform_sync_enabled", sync},
                    {"platform_base_url", platform_.url()},
                    {"hub_agent_id", kSerial},
                    {"hub_agent_secret", kBootstrap}};
    agent_.start(options);
  }

  Process& agent() { return agent_.process(); }

  // SIGKILL as soon as the current run's log holds more than `before` "recorded" lines; REQUIREs
  // that the line came.
  void kill_when_recorded(std::size_t before) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (agent().count_log(kRecorded) == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ::kill(agent().pid(), SIGKILL);
    INFO(agent().log());
    REQUIRE(agent().count_log(kRecorded) > before);
    agent().wait(5s);
    agent_.discard();
  }

  const FakeHaProcess& ha() const { return fake_; }

  // Every electric row for kEntity the platform was sent, oldest first.
  std::vector<json> electric_rows() const {
    std::vector<json> out;
    for (const auto& b : platform_.token_state_bodies()) {
      for (const auto& row :
           b.value("electricUsage", json::object()).value("devices", json::array())) {
        if (row.value("entityId", "") == kEntity) out.push_back(row);
      }
    }
    return out;
  }

  // The electric row the platform got for an observation at `at_ms`, waited for; REQUIREs it.
  json row_seen_at(std::int64_t at_ms, std::chrono::milliseconds timeout) const {
    std::optional<json> row;
    REQUIRE(eventually(
        [&] {
          for (const auto& r : electric_rows()) {
            if (r["lastSeenAt"] == iso(at_ms)) row = r;
          }
          return row.has_value();
        },
        timeout));
    return *row;
  }

  void check_no_drops() const { platform_.check_no_telemetry_drops(); }

  void check_no_secrets() {
    dinodia::testing::check_no_secrets(fake_.process().log() + agent_.all_logs(),
                                       {kHubToken, kSupervisorToken, kBootstrap});
  }

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  FakePlatformProcess platform_;
  AgentProcess agent_;
};

json kettle_state(const std::string& state, std::int64_t last_changed, std::int64_t last_updated) {
  return {{"entity_id", kEntity},
          {"state", state},
          {"attributes", {{"friendly_name", "Kettle"}}},
          {"last_changed", iso(last_changed)},
          {"last_updated", iso(last_updated)}};
}

json kettle_registry(const char* area) {
  return json::array({{{"entity_id", kEntity},
                       {"labels", json::array({"light"})},
                       {"area_id", area},
                       {"name", "Kettle"},
                       {"disabled_by", nullptr},
                       {"hidden_by", nullptr}}});
}

// The label, both areas, the kettle in `area` and its state.
void setup_kettle(const Stack& stack, const char* area, const json& state) {
  stack.ha().post("/_fake/set",
                  {{"label_registry", json::array({{{"label_id", "light"}, {"name", "Light"}}})},
                   {"area_registry", json::array({{{"area_id", "kitchen"}, {"name", "Kitchen"}},
                                                  {{"area_id", "hall"}, {"name", "Hall"}}})},
                   {"entity_registry", kettle_registry(area)},
                   {"states", json::array({state})}});
}

// Time is never counted twice: the counters fit into the segment's observed span.
void check_counted_within_span(const json& row) {
  INFO(row.dump());
  const std::int64_t span_s = (ms(row["lastSeenAt"]) - ms(row["assignmentStartedAt"])) / 1000;
  CHECK(row["onSeconds"].get<std::int64_t>() + row["offSeconds"].get<std::int64_t>() +
            row["unknownSeconds"].get<std::int64_t>() <=
        span_s);
}

}  // namespace

TEST_CASE("electric: kill -9 right after an on/off change - the change is not lost",
          "[telemetry][integration][electric][crash]") {
  Stack stack;
  // An hour ago, so every time below is in the past; steps stay under the 600 s unknown gap.
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_kettle(stack, "kitchen", kettle_state("off", t0, t0));
  stack.start_agent(false);
  REQUIRE(stack.agent().wait_for_log("Electric usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));

  // Seeded OFF at t0 (and saved); ON at t0+120 s, killed as soon as that is recorded.
  const std::size_t before = stack.agent().count_log(kRecorded);
  stack.ha().post(
      "/_fake/event",
      state_changed_event(kettle_state("on", t0 + 120'000, t0 + 120'000), t0 + 120'000));
  stack.kill_when_recorded(before);

  // While the agent is down the switch reports an attribute at t0+300 s, still ON since t0+120.
  stack.ha().post("/_fake/set",
                  {{"states", json::array({kettle_state("on", t0 + 120'000, t0 + 300'000)})}});
  stack.start_agent(true);

  // The restart's seed observes ON at t0+300 s: 120 s OFF, then 180 s ON. Had the change been
  // lost, the store would say "OFF since t0" and the seed would count 300 s OFF, 0 s ON.
  const json row = stack.row_seen_at(t0 + 300'000, 30s);
  {
    INFO(row.dump());
    CHECK(row["offSeconds"] == 120);
    CHECK(row["onSeconds"] == 180);
    CHECK(row["unknownSeconds"] == 0);
    CHECK(row["lastWasOn"] == true);
    CHECK(row["lastWasKnown"] == true);
    CHECK(row["retired"] == false);
    CHECK(row["areaId"] == "kitchen");
    // Still the segment the first run opened at t0: no new epoch, nothing restarted.
    CHECK(row["trackingStartedAt"] == iso(t0));
    CHECK(row["assignmentStartedAt"] == iso(t0));
    check_counted_within_span(row);
  }

  // A later event continues the same segment: still ON at t0+420 s, 300 s ON in all (a lost
  // change would show 120 s ON here).
  stack.ha().post(
      "/_fake/event",
      state_changed_event(kettle_state("on", t0 + 120'000, t0 + 420'000), t0 + 420'000));
  const json later = stack.row_seen_at(t0 + 420'000, 20s);
  INFO(later.dump());
  CHECK(later["offSeconds"] == 120);
  CHECK(later["onSeconds"] == 300);
  CHECK(later["unknownSeconds"] == 0);
  CHECK(later["trackingEpoch"] == row["trackingEpoch"]);
  CHECK(later["assignmentEpoch"] == row["assignmentEpoch"]);
  check_counted_within_span(later);
  stack.check_no_drops();
  stack.check_no_secrets();
}

TEST_CASE("electric: kill -9 right after an area change - the closed segment is not lost",
          "[telemetry][integration][electric][crash]") {
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_kettle(stack, "kitchen", kettle_state("on", t0, t0));
  stack.start_agent(false);
  REQUIRE(stack.agent().wait_for_log("Electric usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));

  // The kettle moves to the hall. The registry is re-read when Core comes back; the state read
  // of the reconnect's seeding is made to fail (TCP reset), so no observation happens there
  // (it would apply the move at t0, the state's last_updated) and the seeding's save holds
  // nothing new.
  stack.ha().post("/_fake/set", {{"entity_registry", kettle_registry("hall")}});
  stack.ha().control("/_fake/fault?mode=reset_before_status&count=1&path=/core/api/states/" +
                     kEntity);
  stack.ha().control("/_fake/core?running=0");
  stack.ha().control("/_fake/core?running=1");
  REQUIRE(eventually(
      [&] {
        return stack.agent().count_log("Electric usage seeded initial entity states") >= 2 &&
               stack.agent().count_log("Usage tracking subscribed to state_changed") >= 2;
      },
      30s));
  REQUIRE(stack.ha().stats().value("faults_injected", 0) == 1);

  // Still ON at t0+200 s, now in the hall: the kitchen segment closes with 200 s ON and a hall
  // segment opens at t0+200 s. Killed as soon as that is recorded.
  const std::size_t before = stack.agent().count_log(kRecorded);
  stack.ha().post("/_fake/event",
                  state_changed_event(kettle_state("on", t0, t0 + 200'000), t0 + 200'000));
  stack.kill_when_recorded(before);

  stack.ha().post("/_fake/set", {{"states", json::array({kettle_state("on", t0, t0 + 300'000)})}});
  stack.start_agent(true);

  // Seeded at t0+300 s: kitchen 200 s ON (closed), hall from t0+200 s with 100 s ON. Had the
  // move been lost, the seed would find "kitchen, ON since t0" and move it at t0+300 s instead:
  // kitchen 300 s ON, hall from t0+300 s with 0 s.
  std::optional<json> kitchen, hall;
  REQUIRE(eventually(
      [&] {
        for (const auto& r : stack.electric_rows()) {
          if (r["areaId"] == "kitchen" && r["retired"] == true) kitchen = r;
          if (r["areaId"] == "hall" && r["lastSeenAt"] == iso(t0 + 300'000)) hall = r;
        }
        return kitchen.has_value() && hall.has_value();
      },
      30s));
  INFO(kitchen->dump() << "\n" << hall->dump());
  CHECK((*kitchen)["onSeconds"] == 200);
  CHECK((*kitchen)["offSeconds"] == 0);
  CHECK((*kitchen)["unknownSeconds"] == 0);
  CHECK((*kitchen)["areaName"] == "Kitchen");
  CHECK((*kitchen)["assignmentStartedAt"] == iso(t0));
  CHECK((*hall)["onSeconds"] == 100);
  CHECK((*hall)["offSeconds"] == 0);
  CHECK((*hall)["unknownSeconds"] == 0);
  CHECK((*hall)["retired"] == false);
  CHECK((*hall)["areaName"] == "Hall");
  CHECK((*hall)["assignmentStartedAt"] == iso(t0 + 200'000));
  CHECK((*hall)["trackingStartedAt"] == iso(t0 + 200'000));
  // The move opened new epochs (an area change closes the segment).
  CHECK((*hall)["trackingEpoch"] != (*kitchen)["trackingEpoch"]);
  CHECK((*hall)["assignmentEpoch"] != (*kitchen)["assignmentEpoch"]);
  check_counted_within_span(*hall);
  stack.check_no_drops();
  stack.check_no_secrets();
}
