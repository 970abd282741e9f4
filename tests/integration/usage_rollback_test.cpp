// Upgrade -> run -> rollback to 0.4.17 -> run -> upgrade again, with the real binary and the 0.4.17
// files as the exchange format (docs/compatibility.md#usage-files, #token-state-file): no pairing,
// no token and no counted second is lost, and nothing is counted twice.
//
// 0.4.17 cannot run here, so its run is played on the files the way it would go
// (legacy-agent rules as summarised in docs/compatibility.md#heating-usage and #electric-usage):
// it loads the files the agent left, accumulates from the stored lastSeenAt/lastWasOn, keeps the
// counters cumulative, sets dirty, moves lastSeenAt, records the boiler's heat-run end, rewrites
// each file whole (2-space JSON), and rewrites the token state after a sync.
//
// Why the checks can only pass if the exchange works:
//  * The first run leaves the boiler at 240 s on and the kettle at 180 s on. The played 0.4.17
//    run takes them to 440 s and 380 s. A re-upgrade that ignores the files uploads 240/180
//    again (the old behaviour); one that adds them uploads 680/560. Only taking the files as
//    they are uploads 440/380, and then counted time equals observed time exactly.
//  * The next event after the re-upgrade is counted from the files' lastSeenAt and state (OFF
//    since t0+500 s), which only the imported state knows.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::testing;
using nlohmann::json;
using ordered = nlohmann::ordered_json;

namespace {

const std::string kHubToken = "rollback-hub-token-4c1f";
const std::string kSupervisorToken = "supervisor-secret-rollback-8a3e";
const std::string kSerial = "HUB-ROLLBACK-1";
const std::string kBootstrap = "bootstrap-secret-rollback-27d9";
const std::string kBoiler = "climate.boiler";
const std::string kKettle = "switch.kettle";

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  return wait_until(condition, timeout, std::chrono::milliseconds(200));
}

std::string iso(std::int64_t ms_value) {
  return dinodia::clock::iso8601_from_millis(ms_value);
}

std::int64_t ms(const json& iso_value) {
  return dinodia::clock::parse_iso8601_millis(iso_value.get<std::string>()).value_or(-1);
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

std::vector<std::string> keys(const ordered& o) {
  std::vector<std::string> out;
  for (const auto& [k, v] : o.items()) out.push_back(k);
  return out;
}

json boiler_state(double current, double target, std::int64_t at) {
  return {{"entity_id", kBoiler},
          {"state", "heat"},
          {"attributes",
           {{"hvac_mode", "heat"}, {"current_temperature", current}, {"temperature", target}}},
          {"last_changed", iso(at)},
          {"last_updated", iso(at)}};
}

json kettle_state(const std::string& state, std::int64_t last_changed, std::int64_t last_updated) {
  return {{"entity_id", kKettle},
          {"state", state},
          {"attributes", {{"friendly_name", "Kettle"}}},
          {"last_changed", iso(last_changed)},
          {"last_updated", iso(last_updated)}};
}

// fake_ha, fake_platform and the agent in one temp dir, which is also the agent's data folder:
// the heating file sits at 0.4.17's default name there, the electric one at the path
// DINODIA_ELECTRIC_USAGE_STATE_PATH names. A trimmed copy of telemetry_test.cpp's Stack.
class Stack {
 public:
  Stack()
      : fake_(dir_, kSupervisorToken, 30),
        platform_(dir_, kSerial, kBootstrap, FakePlatformOptions{"", false, {}}),
        agent_({dir_.path(),
                "",
                fake_.url(),
                kSupervisorToken,
                {{"DINODIA_SYNC_INTERVAL_SECONDS", "1"},
                 {"DINODIA_TELEMETRY_POLL_SECONDS", "3600"},
                 {"DINODIA_ELECTRIC_USAGE_STATE_PATH", dir_.file("electric-legacy.json")}},
                30s}) {}

  void start_agent() {
    agent_.start({{"port", 0},
                  {"hub_tokens", json::array({kHubToken})},
                  {"heating_usage_tracking_enabled", true},
                  {"heating_usage_min_process_interval_ms", 0},
                  {"electric_usage_tracking_enabled", true},
                  {"platform_sync_enabled", true},
                  {"platform_base_url", platform_.url()},
                  {"hub_agent_id", kSerial},
                  {"hub_agent_secret", kBootstrap}});
    // Seeding (a REST read per entity) and the subscription run side by side; an event handled
    // before the seed would make the seed out of order.
    REQUIRE(agent().wait_for_log("Electric usage seeded initial entity states", 20s));
    REQUIRE(agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));
  }

  void stop_agent() {
    agent().signal(SIGTERM);
    REQUIRE(agent().wait(10s) == 0);
    agent_.discard();
  }

  Process& agent() { return agent_.process(); }
  const FakeHaProcess& ha() const { return fake_; }
  FakePlatformProcess& platform() { return platform_; }
  std::string heating_file() const { return dir_.file("heating_usage_state.json"); }
  std::string electric_file() const { return dir_.file("electric-legacy.json"); }
  std::string token_file() const { return dir_.file("dinodia_token_state.json"); }

  // Every row for `entity_id` the platform was sent (its last 50 bodies), oldest first.
  std::vector<json> rows(const char* usage_key, const std::string& entity_id) const {
    std::vector<json> out;
    for (const auto& b : platform_.token_state_bodies()) {
      for (const auto& row : b.value(usage_key, json::object()).value("devices", json::array())) {
        if (row.value("entityId", "") == entity_id) out.push_back(row);
      }
    }
    return out;
  }

  // The first row sent for an observation at `at_ms`, waited for; REQUIREs it.
  json row_seen_at(const char* usage_key, const std::string& entity_id, std::int64_t at_ms) const {
    std::optional<json> row;
    REQUIRE(eventually(
        [&] {
          for (const auto& r : rows(usage_key, entity_id)) {
            if (r["lastSeenAt"] == iso(at_ms)) {
              row = r;
              return true;
            }
          }
          return false;
        },
        20s));
    return *row;
  }

  std::string all_logs() { return fake_.process().log() + agent_.all_logs(); }

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  FakePlatformProcess platform_;
  AgentProcess agent_;
};

// Counted time equals observed time: nothing counted twice, nothing lost (the boiler is tracked
// from t0, every step well under 0.4.17's 24 h cap).
void check_boiler_counts_span(const json& row, std::int64_t t0) {
  INFO(row.dump());
  CHECK(row["onSeconds"].get<std::int64_t>() + row["offSeconds"].get<std::int64_t>() +
            row["unknownSeconds"].get<std::int64_t>() ==
        (ms(row["lastSeenAt"]) - t0) / 1000);
}
void check_kettle_counts_span(const json& row) {
  INFO(row.dump());
  CHECK(row["onSeconds"].get<std::int64_t>() + row["offSeconds"].get<std::int64_t>() +
            row["unknownSeconds"].get<std::int64_t>() ==
        (ms(row["lastSeenAt"]) - ms(row["trackingStartedAt"])) / 1000);
}

}  // namespace

TEST_CASE("upgrade, rollback to 0.4.17, re-upgrade: usage, pairing and tokens kept, once",
          "[telemetry][integration][legacy]") {
  Stack stack;
  // An hour ago, so every time below is in the past; steps stay under the 600 s unknown gap.
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  stack.ha().post(
      "/_fake/set",
      {{"label_registry", json::array({{{"label_id", "light"}, {"name", "Light"}},
                                       {{"label_id", "lbl_boiler"}, {"name", "Boiler"}}})},
       {"area_registry", json::array({{{"area_id", "kitchen"}, {"name", "Kitchen"}}})},
       {"entity_registry", json::array({{{"entity_id", kBoiler},
                                         {"labels", json::array({"lbl_boiler"})},
                                         {"disabled_by", nullptr},
                                         {"platform", "demo"}},
                                        {{"entity_id", kKettle},
                                         {"labels", json::array({"light"})},
                                         {"area_id", "kitchen"},
                                         {"name", "Kettle"},
                                         {"disabled_by", nullptr},
                                         {"hidden_by", nullptr}}})},
       // Boiler OFF (target 18 < current 20), kettle off, both since t0.
       {"states", json::array({boiler_state(20, 18, t0), kettle_state("off", t0, t0)})}});

  // --- 1.0.0 runs: boiler OFF t0..+60 s then ON to +300 s; kettle off to +120 s, then on.
  stack.start_agent();
  stack.ha().post("/_fake/event",
                  state_changed_event(boiler_state(20, 22, t0 + 60'000), t0 + 60'000));
  stack.ha().post(
      "/_fake/event",
      state_changed_event(kettle_state("on", t0 + 120'000, t0 + 120'000), t0 + 120'000));
  stack.ha().post("/_fake/event",
                  state_changed_event(boiler_state(20.5, 22, t0 + 300'000), t0 + 300'000));
  stack.ha().post(
      "/_fake/event",
      state_changed_event(kettle_state("on", t0 + 120'000, t0 + 300'000), t0 + 300'000));
  const json boiler1 = stack.row_seen_at("heatingUsage", kBoiler, t0 + 300'000);
  const json kettle1 = stack.row_seen_at("electricUsage", kKettle, t0 + 300'000);
  CHECK(boiler1["onSeconds"] == 240);
  CHECK(boiler1["offSeconds"] == 60);
  CHECK(kettle1["onSeconds"] == 180);
  CHECK(kettle1["offSeconds"] == 120);
  REQUIRE(stack.platform().hub()["paired"] == true);
  const std::string sync_secret = stack.platform().hub()["syncSecret"].get<std::string>();
  stack.stop_agent();

  // --- The files 0.4.17 would start on hold these counts, in its shape, 0600.
  CHECK(mode_of(stack.heating_file()) == 0600);
  CHECK(mode_of(stack.electric_file()) == 0600);
  ordered heating = ordered::parse(read_file(stack.heating_file()));
  ordered electric = ordered::parse(read_file(stack.electric_file()));
  ordered token = ordered::parse(read_file(stack.token_file()));
  INFO(heating.dump(2) << "\n" << electric.dump(2));
  CHECK(keys(heating) == std::vector<std::string>{"schemaVersion", "updatedAt", "lastResetAt",
                                                  "config", "entities"});
  CHECK(keys(electric) == std::vector<std::string>{"schemaVersion", "updatedAt", "lastResetAt",
                                                   "resetAckPendingAt", "entities", "pending"});
  ordered& boiler = heating["entities"][kBoiler];
  ordered& kettle = electric["entities"][kKettle];
  CHECK(keys(boiler) == std::vector<std::string>{
                            "label", "onSeconds", "offSeconds", "unknownSeconds",
                            "efficiencyWeightedOnSeconds", "efficiencyOnSeconds", "efficiencyBand",
                            "efficiencyBandVersion", "lastHeatEndAt", "heatRunStartedAt",
                            "heatRunStartOutputFraction", "lastSeenAt", "lastWasOn", "lastWasKnown",
                            "dirty", "lastProcessed", "lastProcessedAt"});
  CHECK(boiler["label"] == "Boiler");
  CHECK(boiler["onSeconds"] == 240);
  CHECK(boiler["offSeconds"] == 60);
  CHECK(boiler["efficiencyOnSeconds"] == 240);
  CHECK(boiler["lastSeenAt"] == iso(t0 + 300'000));
  CHECK(boiler["lastWasOn"] == true);
  CHECK(boiler["lastWasKnown"] == true);
  CHECK(boiler["heatRunStartedAt"] == iso(t0 + 60'000));
  CHECK(kettle["onSeconds"] == 180);
  CHECK(kettle["offSeconds"] == 120);
  CHECK(kettle["lastSeenAt"] == iso(t0 + 300'000));
  CHECK(kettle["lastWasOn"] == true);
  CHECK(kettle["retired"] == false);
  CHECK(kettle["trackingEpoch"].dump() ==
        kettle1["trackingEpoch"].dump());  // ordered_json and json
  CHECK(token["syncSecret"] == sync_secret);
  CHECK_FALSE(token["hubTokenHashes"].empty());

  // --- 0.4.17 runs on these files. At t0+500 s the boiler stops heating (current 23 > target
  // 22) and the kettle goes off. Heating: previous known ON, delta 200 s -> onSeconds and the
  // efficiency counters + 200 (fraction 1 without a bands file; the run started 440 s earlier,
  // inside the 15 min run-start window, at fraction 1 too); ON->OFF ends the heat run. Electric:
  // elapsed 200 s <= 600 s gap, previously on -> onSeconds + 200. Both dirty, lastSeenAt moved.
  // It synced once before that (the token file rewritten as after a sync) and not after, so the
  // advanced rows are still to be uploaded. Then it stops.
  boiler["onSeconds"] = 440;
  boiler["efficiencyOnSeconds"] = 440;
  boiler["efficiencyWeightedOnSeconds"] = boiler["efficiencyWeightedOnSeconds"].get<double>() + 200;
  boiler["lastHeatEndAt"] = iso(t0 + 500'000);
  boiler["heatRunStartedAt"] = nullptr;
  boiler["heatRunStartOutputFraction"] = nullptr;
  boiler["lastSeenAt"] = iso(t0 + 500'000);
  boiler["lastWasOn"] = false;
  boiler["lastWasKnown"] = true;
  boiler["dirty"] = true;
  boiler["lastProcessed"] = {
      {"state", "heat"}, {"hvac_mode", "heat"}, {"current", 23}, {"target", 22}};
  boiler["lastProcessedAt"] = iso(t0 + 500'000);
  heating["updatedAt"] = iso(t0 + 515'000);
  write_file(stack.heating_file(), heating.dump(2));
  kettle["onSeconds"] = 380;
  kettle["lastSeenAt"] = iso(t0 + 500'000);
  kettle["lastWasOn"] = false;
  kettle["lastWasKnown"] = true;
  kettle["dirty"] = true;
  electric["updatedAt"] = iso(t0 + 501'000);
  write_file(stack.electric_file(), electric.dump(2));
  token["updatedAt"] = iso(t0 + 400'000);
  token["lastSyncAt"] = iso(t0 + 400'000);
  write_file(stack.token_file(), token.dump(2));
  // Home Assistant's states as 0.4.17 last saw them.
  stack.ha().post("/_fake/set",
                  {{"states", json::array({boiler_state(23, 22, t0 + 500'000),
                                           kettle_state("off", t0 + 500'000, t0 + 500'000)})}});

  // --- 1.0.0 again: the next upload carries what 0.4.17 counted, once.
  stack.start_agent();
  CHECK(stack.agent().count_log("Imported legacy usage state") == 1);
  CHECK(stack.agent().count_log("afterRollback: true") == 1);
  const json boiler2 = stack.row_seen_at("heatingUsage", kBoiler, t0 + 500'000);
  const json kettle2 = stack.row_seen_at("electricUsage", kKettle, t0 + 500'000);
  INFO(boiler2.dump() << "\n" << kettle2.dump());
  CHECK(boiler2["onSeconds"] == 440);  // 240 would lose 0.4.17's count, 680 double ours
  CHECK(boiler2["offSeconds"] == 60);
  CHECK(boiler2["efficiencyOnSeconds"] == 440);
  CHECK(boiler2["lastWasOn"] == false);
  check_boiler_counts_span(boiler2, t0);
  CHECK(kettle2["onSeconds"] == 380);  // not 180, not 560
  CHECK(kettle2["offSeconds"] == 120);
  CHECK(kettle2["trackingEpoch"] == kettle1["trackingEpoch"]);  // the same segment
  check_kettle_counts_span(kettle2);

  // Counting goes on from 0.4.17's state: OFF since t0+500 s, ON at t0+560 s.
  stack.ha().post("/_fake/event",
                  state_changed_event(boiler_state(20, 22, t0 + 560'000), t0 + 560'000));
  stack.ha().post(
      "/_fake/event",
      state_changed_event(kettle_state("on", t0 + 560'000, t0 + 560'000), t0 + 560'000));
  const json boiler3 = stack.row_seen_at("heatingUsage", kBoiler, t0 + 560'000);
  const json kettle3 = stack.row_seen_at("electricUsage", kKettle, t0 + 560'000);
  CHECK(boiler3["onSeconds"] == 440);
  CHECK(boiler3["offSeconds"] == 120);
  check_boiler_counts_span(boiler3, t0);
  CHECK(kettle3["onSeconds"] == 380);
  CHECK(kettle3["offSeconds"] == 180);
  check_kettle_counts_span(kettle3);

  // Pairing and tokens: the token state 0.4.17 left was taken over, no new pairing, and syncs go
  // on with the same secret.
  CHECK(stack.agent().count_log("Imported legacy token state") == 1);
  CHECK(stack.agent().count_log("Paired with platform") == 0);
  REQUIRE(stack.agent().wait_for_log("Platform sync updated tokens", 20s));
  CHECK(stack.platform().hub()["syncSecret"] == sync_secret);
  stack.stop_agent();

  // --- A plain restart (no 0.4.17 in between) imports nothing: the files are its own write.
  stack.start_agent();
  CHECK(stack.agent().count_log("Imported legacy usage state") == 0);
  stack.ha().post("/_fake/event",
                  state_changed_event(boiler_state(20.5, 22, t0 + 600'000), t0 + 600'000));
  const json boiler4 = stack.row_seen_at("heatingUsage", kBoiler, t0 + 600'000);
  CHECK(boiler4["onSeconds"] == 480);
  CHECK(boiler4["offSeconds"] == 120);
  check_boiler_counts_span(boiler4, t0);
  stack.stop_agent();

  // No upload ever counted more than was observed, in any run.
  for (const auto& row : stack.rows("heatingUsage", kBoiler)) check_boiler_counts_span(row, t0);
  for (const auto& row : stack.rows("electricUsage", kKettle)) check_kettle_counts_span(row);
  stack.platform().check_no_telemetry_drops();
  check_no_secrets(stack.all_logs(), {kHubToken, kSupervisorToken, kBootstrap, sync_secret});
}
