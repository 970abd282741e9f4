// agent/legacy_usage_files: the 0.4.17 heating and electric usage files as the exchange format
// across upgrade, rollback and re-upgrade (docs/compatibility.md#usage-files): exactly 0.4.17's
// shape written, 0600; a file 0.4.17 advanced is taken as it is (Y, not X + Y) with this agent's
// own bookkeeping kept; our own last write is never re-imported; a kill at any point of a save
// leaves a file 0.4.17 can read and a next start that loses nothing.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/environment.hpp"
#include "agent/legacy_usage_files.hpp"
#include "agent/options.hpp"
#include "common/clock.hpp"
#include "telemetry/usage_store.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using namespace dinodia::telemetry;
using dinodia::testing::file_exists;
using dinodia::testing::read_file;
using dinodia::testing::TempDir;
using dinodia::testing::write_file;
using Json = nlohmann::json;
using Ordered = nlohmann::ordered_json;

namespace {

const std::int64_t t0 = *dinodia::clock::parse_iso8601_millis("2026-01-10T08:00:00.000Z");

std::string iso(std::int64_t ms) {
  return dinodia::clock::iso8601_from_millis(ms);
}

HeatingSnapshot heating_on(double current = 18) {
  return {"heat", "heat", current, 21.0};
}
HeatingSnapshot heating_off() {
  return {"heat", "heat", 22.0, 21.0};
}

std::vector<std::string> keys(const Ordered& o) {
  std::vector<std::string> out;
  for (const auto& [k, v] : o.items()) out.push_back(k);
  return out;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// One agent start on `dir`: the store, both trackers loaded from it, the files object.
struct Start {
  UsageStore store;
  HeatingTracker heating;
  ElectricTracker electric;
  bool heating_stored;
  bool electric_stored;
  LegacyUsageFiles files;
  explicit Start(const TempDir& dir)
      : store(dir.file("dinodia-agent.db")),
        heating_stored(store.load(heating)),
        electric_stored(store.load(electric)),
        files(dir.file("heating_usage_state.json"), dir.file("electric_usage_state.json"), store) {}
  LegacyUsageImport import_files() {
    return files.import_changed(heating, heating_stored, electric, electric_stored);
  }
  void save() {
    store.save(heating, electric);
    files.export_changed(heating, electric);
  }
};

const ElectricDescriptor kLamp{"light.lamp", "Lamp", std::string("kitchen"),
                               std::string("Kitchen")};

}  // namespace

TEST_CASE("legacy usage paths: environment, option, and 0.4.17's default in the data folder",
          "[legacy][usage]") {
  Options o;
  Environment env;
  env.data_dir = "/tmp/agent-data";
  o.heating_usage_persist_path = "/data/heating_usage_state.json";
  o.electric_usage_persist_path = "/data/electric_usage_state.json";
  CHECK(legacy_heating_usage_path(o, env) == "/tmp/agent-data/heating_usage_state.json");
  CHECK(legacy_electric_usage_path(o, env) == "/tmp/agent-data/electric_usage_state.json");
  o.heating_usage_persist_path = "/share/heating.json";
  CHECK(legacy_heating_usage_path(o, env) == "/share/heating.json");
  o.electric_usage_persist_path = "";
  CHECK(legacy_electric_usage_path(o, env).empty());
  env.heating_usage_state_path = "/x/h.json";
  env.electric_usage_state_path = "/x/e.json";
  CHECK(legacy_heating_usage_path(o, env) == "/x/h.json");
  CHECK(legacy_electric_usage_path(o, env) == "/x/e.json");
}

TEST_CASE("the files are written in exactly 0.4.17's shape, mode 0600", "[legacy][usage]") {
  TempDir dir;
  Start s(dir);
  s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0);
  s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_on(), t0 + 60'000);
  s.heating.observe("climate.rad", HeatingLabel::radiator, heating_on(), t0);
  s.heating.acknowledge(s.heating.upload_body(t0), t0 + 1);  // gives lastAckedAtMs a value
  s.electric.observe(kLamp, "on", t0);
  s.electric.observe({"light.lamp", "Lamp", std::string("hall"), std::string("Hall")}, "off",
                     t0 + 30'000);  // area change: a pending segment
  s.save();

  const std::string heating_path = dir.file("heating_usage_state.json");
  const std::string electric_path = dir.file("electric_usage_state.json");
  CHECK(mode_of(heating_path) == 0600);
  CHECK(mode_of(electric_path) == 0600);
  const std::string heating_text = read_file(heating_path);
  CHECK(heating_text.rfind("{\n  \"schemaVersion\": 2,\n  \"updatedAt\": ", 0) == 0);  // 2-space
  const Ordered h = Ordered::parse(heating_text);
  CHECK(keys(h) == std::vector<std::string>{"schemaVersion", "updatedAt", "lastResetAt", "config",
                                            "entities"});
  CHECK(keys(h["config"]) == std::vector<std::string>{"efficiencyBandsVersion",
                                                      "defaultBoilerEfficiencyBand",
                                                      "boilerBandsByEntityId"});
  CHECK(keys(h["entities"]) == std::vector<std::string>{"climate.boiler", "climate.rad"});
  CHECK(keys(h["entities"]["climate.boiler"]) ==
        std::vector<std::string>{
            "label", "onSeconds", "offSeconds", "unknownSeconds", "efficiencyWeightedOnSeconds",
            "efficiencyOnSeconds", "efficiencyBand", "efficiencyBandVersion", "lastHeatEndAt",
            "heatRunStartedAt", "heatRunStartOutputFraction", "lastSeenAt", "lastWasOn",
            "lastWasKnown", "dirty", "lastProcessed", "lastProcessedAt"});
  CHECK(keys(h["entities"]["climate.rad"]) ==
        std::vector<std::string>{"label", "onSeconds", "offSeconds", "unknownSeconds", "lastSeenAt",
                                 "lastWasOn", "lastWasKnown", "dirty", "lastProcessed",
                                 "lastProcessedAt"});
  CHECK(keys(h["entities"]["climate.boiler"]["lastProcessed"]) ==
        std::vector<std::string>{"state", "hvac_mode", "current", "target"});
  const Ordered& boiler = h["entities"]["climate.boiler"];
  CHECK(boiler["offSeconds"] == 60);
  CHECK(boiler["dirty"] == false);
  CHECK(boiler["lastSeenAt"] == iso(t0 + 60'000));
  CHECK(boiler["heatRunStartedAt"] == iso(t0 + 60'000));
  CHECK(h["entities"]["climate.rad"]["dirty"] == false);

  const Ordered e = Ordered::parse(read_file(electric_path));
  CHECK(keys(e) == std::vector<std::string>{"schemaVersion", "updatedAt", "lastResetAt",
                                            "resetAckPendingAt", "entities", "pending"});
  const std::vector<std::string> entry_keys{"entityId",
                                            "entityName",
                                            "trackingStartedAt",
                                            "trackingEpoch",
                                            "assignmentStartedAt",
                                            "assignmentEpoch",
                                            "areaId",
                                            "areaName",
                                            "onSeconds",
                                            "offSeconds",
                                            "unknownSeconds",
                                            "lastSeenAt",
                                            "lastWasOn",
                                            "lastWasKnown",
                                            "retired",
                                            "dirty"};
  CHECK(keys(e["entities"]["light.lamp"]) == entry_keys);
  REQUIRE(e["pending"].size() == 1);
  std::vector<std::string> retired_keys = entry_keys;
  retired_keys.push_back("retiredAt");
  CHECK(keys(e["pending"][0]) == retired_keys);
  CHECK(e["pending"][0]["onSeconds"] == 30);
  CHECK(e["pending"][0]["areaId"] == "kitchen");
  CHECK(e["entities"]["light.lamp"]["areaId"] == "hall");

  // The trackers read back the same state from these files.
  HeatingTracker h2;
  h2.load_json(Json::parse(heating_text));
  REQUIRE(h2.entries().size() == 2);
  for (const auto& entry : s.heating.entries()) {
    const auto* back = h2.find(entry.entity_id);
    REQUIRE(back != nullptr);
    CHECK(h2.row(*back) == s.heating.row(entry));
    CHECK(back->dirty == entry.dirty);
    CHECK(back->heat_run_started_at == entry.heat_run_started_at);
  }
  ElectricTracker e2;
  e2.load_json(Json::parse(read_file(electric_path)));
  CHECK(e2.payload(t0) == s.electric.payload(t0));
}

TEST_CASE("re-upgrade: what 0.4.17 counted from our totals is taken once (Y, not X + Y)",
          "[legacy][usage]") {
  TempDir dir;
  const std::string reset = "2026-01-01T00:00:00.000Z";
  {
    Start s(dir);
    CHECK_FALSE(s.import_files().heating_imported);  // no files yet
    s.heating.apply_reset(reset);
    s.electric.apply_reset(reset);
    s.heating.reset_ack_confirmed(reset);  // the platform completed it
    s.electric.acknowledge_reset(reset);
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0);
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_on(), t0 + 60'000);
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_on(18.5), t0 + 300'000);
    s.heating.acknowledge(s.heating.upload_body(t0 + 301'000), t0 + 301'000);
    s.electric.observe(kLamp, "off", t0);
    s.electric.observe(kLamp, "on", t0 + 120'000);
    s.electric.observe(kLamp, "on", t0 + 300'000);
    s.save();
    REQUIRE(s.heating.find("climate.boiler")->on_seconds == 240);
  }

  // 0.4.17 resumes from these files and counts on (legacy-agent rules: cumulative counters,
  // dirty set, lastSeenAt moved), then stops.
  Ordered h = Ordered::parse(read_file(dir.file("heating_usage_state.json")));
  Ordered& boiler = h["entities"]["climate.boiler"];
  REQUIRE(boiler["onSeconds"] == 240);
  boiler["onSeconds"] = 440;  // on from t0+300 s to the OFF at t0+500 s
  boiler["efficiencyOnSeconds"] = 440;
  boiler["efficiencyWeightedOnSeconds"] = 440.0;
  boiler["lastHeatEndAt"] = iso(t0 + 500'000);
  boiler["heatRunStartedAt"] = nullptr;
  boiler["heatRunStartOutputFraction"] = nullptr;
  boiler["lastSeenAt"] = iso(t0 + 500'000);
  boiler["lastWasOn"] = false;
  boiler["dirty"] = true;
  boiler["lastProcessed"] = {
      {"state", "heat"}, {"hvac_mode", "heat"}, {"current", 22}, {"target", 21}};
  boiler["lastProcessedAt"] = iso(t0 + 500'000);
  h["updatedAt"] = iso(t0 + 515'000);
  write_file(dir.file("heating_usage_state.json"), h.dump(2));
  Ordered e = Ordered::parse(read_file(dir.file("electric_usage_state.json")));
  Ordered& lamp = e["entities"]["light.lamp"];
  REQUIRE(lamp["onSeconds"] == 180);
  lamp["onSeconds"] = 380;
  lamp["lastSeenAt"] = iso(t0 + 500'000);
  lamp["lastWasOn"] = false;
  lamp["dirty"] = true;
  e["updatedAt"] = iso(t0 + 501'000);
  write_file(dir.file("electric_usage_state.json"), e.dump(2));

  std::int64_t acked_at = 0;
  {
    Start s(dir);
    REQUIRE(s.heating_stored);
    acked_at = s.heating.find("climate.boiler")->last_acked_at;
    CHECK(acked_at == t0 + 301'000);
    const auto r = s.import_files();
    CHECK(r.heating_imported);
    CHECK(r.electric_imported);
    CHECK(r.after_rollback);
    const auto* b = s.heating.find("climate.boiler");
    REQUIRE(b != nullptr);
    CHECK(b->on_seconds == 440);  // not 240 + 440
    CHECK(b->off_seconds == 60);
    CHECK(b->efficiency_on_seconds == 440);
    CHECK(b->last_seen_at == t0 + 500'000);
    CHECK_FALSE(b->last_was_on);
    CHECK(b->dirty);
    CHECK(b->last_acked_at == acked_at);             // our own bookkeeping kept
    CHECK_FALSE(s.heating.reset_ack().has_value());  // same reset: still confirmed
    REQUIRE(s.electric.entities().size() == 1);
    CHECK(s.electric.entities()[0].on_seconds == 380);  // not 180 + 380
    CHECK(s.electric.entities()[0].off_seconds == 120);
    CHECK_FALSE(s.electric.reset_acknowledgement().has_value());
    // Counting goes on from there: OFF since t0+500 s, ON at t0+560 s.
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_on(), t0 + 560'000);
    CHECK(s.heating.find("climate.boiler")->off_seconds == 120);
    s.save();
  }
  {
    // A restart with no 0.4.17 in between imports nothing: the files are our own last write.
    Start s(dir);
    CHECK(s.heating.find("climate.boiler")->off_seconds == 120);
    const auto r = s.import_files();
    CHECK_FALSE(r.heating_imported);
    CHECK_FALSE(r.electric_imported);
    CHECK(s.heating.find("climate.boiler")->off_seconds == 120);
    CHECK(s.electric.entities()[0].on_seconds == 380);
  }
}

TEST_CASE("re-upgrade after 0.4.17 took a reset and acknowledged uploads", "[legacy][usage]") {
  TempDir dir;
  {
    Start s(dir);
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0);
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_on(), t0 + 60'000);
    s.electric.observe(kLamp, "on", t0);
    s.electric.observe({"light.lamp", "Lamp", std::string("hall"), std::string("Hall")}, "on",
                       t0 + 60'000);
    s.save();
    REQUIRE(s.electric.pending().size() == 1);
  }
  // 0.4.17 uploaded the pending segment and had it acknowledged (removed), then the platform
  // asked for a reset: heating and electric state replaced, the electric reset acknowledgement
  // pending.
  const std::string reset = "2026-02-01T00:00:00.000Z";
  Ordered e = Ordered::parse(read_file(dir.file("electric_usage_state.json")));
  e["pending"] = Ordered::array();
  e["lastResetAt"] = reset;
  e["resetAckPendingAt"] = reset;
  e["entities"] = Ordered::object();
  write_file(dir.file("electric_usage_state.json"), e.dump(2));
  Ordered h = Ordered::parse(read_file(dir.file("heating_usage_state.json")));
  h["lastResetAt"] = reset;
  h["entities"] = Ordered::object();
  write_file(dir.file("heating_usage_state.json"), h.dump(2));

  Start s(dir);
  const auto r = s.import_files();
  CHECK(r.heating_imported);
  CHECK(r.electric_imported);
  CHECK(s.heating.entries().empty());
  CHECK(s.electric.pending().empty());
  CHECK(s.electric.entities().empty());
  // The reset is acknowledged by this agent from now on, until the platform completes it.
  CHECK(s.heating.reset_ack() == reset);
  CHECK(s.electric.reset_acknowledgement() == reset);
  CHECK_FALSE(s.heating.reset_due(Json(reset)));  // not applied a second time
}

TEST_CASE("first start imports the 0.4.17 files, entry by entry validated", "[legacy][usage]") {
  TempDir dir;
  write_file(dir.file("heating_usage_state.json"), R"({
    "schemaVersion": 2, "updatedAt": "2026-01-01T00:00:00.000Z", "lastResetAt": "2025-12-01T00:00:00.000Z",
    "config": {"efficiencyBandsVersion": 1, "defaultBoilerEfficiencyBand": "B", "boilerBandsByEntityId": {"climate.boiler": "C"}},
    "entities": {
      "climate.boiler": {"label": "Boiler", "onSeconds": 3600, "offSeconds": 7200, "unknownSeconds": 5,
        "efficiencyWeightedOnSeconds": 3600.5, "efficiencyOnSeconds": 3600, "efficiencyBand": "C", "efficiencyBandVersion": 1,
        "lastHeatEndAt": null, "heatRunStartedAt": null, "heatRunStartOutputFraction": null,
        "lastSeenAt": "2026-01-01T00:00:00.000Z", "lastWasOn": false, "lastWasKnown": true, "dirty": true,
        "lastProcessed": {"state": "off", "hvac_mode": "off", "current": 19.5, "target": 21},
        "lastProcessedAt": "2026-01-01T00:00:00.000Z"},
      "climate.broken": {"label": "Boiler", "onSeconds": "lots", "offSeconds": 0, "lastSeenAt": "2026-01-01T00:00:00.000Z"}
    }})");
  write_file(dir.file("electric_usage_state.json"), R"({
    "schemaVersion": 1, "updatedAt": null, "lastResetAt": null, "resetAckPendingAt": null,
    "entities": {"light.a": {"entityId": "light.a", "entityName": "A", "trackingStartedAt": "2026-01-01T00:00:00.000Z",
      "trackingEpoch": "e1", "assignmentStartedAt": "2026-01-01T00:00:00.000Z", "assignmentEpoch": "a1",
      "areaId": null, "areaName": null, "onSeconds": 10, "offSeconds": 20, "unknownSeconds": 30,
      "lastSeenAt": "2026-01-01T00:01:00.000Z", "lastWasOn": true, "lastWasKnown": true, "retired": false, "dirty": true}},
    "pending": []})");
  {
    Start s(dir);
    CHECK_FALSE(s.heating_stored);
    const auto r = s.import_files();
    CHECK(r.heating_imported);
    CHECK(r.electric_imported);
    CHECK_FALSE(r.after_rollback);
    CHECK(r.dropped_entries == 1);
    CHECK(s.heating.find("climate.boiler")->on_seconds == 3600);
    CHECK(s.heating.config().bands_by_entity_id.at("climate.boiler") == 'C');
    CHECK(s.heating.reset_ack() == "2025-12-01T00:00:00.000Z");
    CHECK(s.electric.payload(0)["devices"][0]["unknownSeconds"] == 30);
  }
  // Saved by the import: the next start has it without the files, and does not import again.
  Start s(dir);
  REQUIRE(s.heating_stored);
  REQUIRE(s.electric_stored);
  CHECK(s.heating.find("climate.boiler")->efficiency_weighted_on_seconds == Approx(3600.5));
  CHECK_FALSE(s.import_files().heating_imported);
}

TEST_CASE("legacy usage files: malformed ones are ignored once, unreadable ones retried",
          "[legacy][usage]") {
  TempDir dir;
  write_file(dir.file("heating_usage_state.json"), R"({"schemaVersion": 1, "entities": {}})");
  write_file(dir.file("electric_usage_state.json"), "{not json");
  {
    Start s(dir);
    const auto r = s.import_files();
    CHECK_FALSE(r.heating_imported);
    CHECK_FALSE(r.electric_imported);
    // Our state overwrites them at the first save, in the right shape.
    s.heating.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0);
    s.save();
    CHECK(Json::parse(read_file(dir.file("heating_usage_state.json")))["schemaVersion"] == 2);
  }
  if (geteuid() != 0) {
    write_file(dir.file("electric_usage_state.json"), R"({"schemaVersion": 1, "entities": {}})");
    ::chmod(dir.file("electric_usage_state.json").c_str(), 0);
    Start s(dir);
    CHECK_FALSE(s.import_files().electric_imported);
    ::chmod(dir.file("electric_usage_state.json").c_str(), 0600);
    Start again(dir);
    CHECK(again.import_files().electric_imported);  // retried, not marked as seen
  }
}

TEST_CASE("a database from the one-time-import builds does not re-import the old file",
          "[legacy][usage]") {
  TempDir dir;
  {
    UsageStore store(dir.file("dinodia-agent.db"));
    HeatingTracker h;
    h.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0);
    h.observe("climate.boiler", HeatingLabel::boiler, heating_off(), t0 + 600'000,
              ObservationSource::poll);
    store.save(h);
    store.set_meta("legacy_import_done", "2026-01-01 00:00:00");
  }
  // 0.4.17's file from before the upgrade, never written since.
  write_file(dir.file("heating_usage_state.json"),
             R"({"schemaVersion": 2, "entities": {"climate.boiler": {"label": "Boiler",
                 "onSeconds": 1, "offSeconds": 2, "lastSeenAt": "2026-01-01T00:00:00.000Z"}}})");
  Start s(dir);
  CHECK_FALSE(s.import_files().heating_imported);
  CHECK(s.heating.find("climate.boiler")->off_seconds == 600);
}

TEST_CASE("kill -9 at any point of a save: a readable file and a next start that loses nothing",
          "[legacy][usage][crash]") {
  TempDir dir;
  for (int round = 0; round < 6; ++round) {
    const std::string ready = dir.file("ready");
    ::unlink(ready.c_str());
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      Start s(dir);
      s.import_files();
      std::int64_t t = t0;
      if (!s.electric.entities().empty()) t = s.electric.entities()[0].last_seen_at;
      for (std::int64_t i = 1;; ++i) {  // save + file until killed; every third one a change
        s.electric.observe(kLamp, (i / 3) % 2 ? "on" : "off", t + i * 1000);
        s.save();
        if (i == 10) write_file(ready, "1");
      }
    }
    while (!file_exists(ready)) usleep(1000);
    usleep(static_cast<useconds_t>(3'000 + round * 7'000));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));

    // 0.4.17 could start on this file: it is whole and of the right schema.
    const Json file = Json::parse(read_file(dir.file("electric_usage_state.json")), nullptr, false);
    REQUIRE_FALSE(file.is_discarded());
    CHECK(file["schemaVersion"] == 1);
    const Json& f = file.at("entities").at("light.lamp");
    const std::int64_t file_total = f["onSeconds"].get<std::int64_t>() +
                                    f["offSeconds"].get<std::int64_t>() +
                                    f["unknownSeconds"].get<std::int64_t>();

    Start s(dir);
    REQUIRE(s.electric_stored);
    const auto& before = s.electric.entities().at(0);
    const std::int64_t db_total = before.on_seconds + before.off_seconds + before.unknown_seconds;
    const std::int64_t db_seen = before.last_seen_at;
    CHECK(file_total <= db_total);  // the file never runs ahead of the database
    s.import_files();
    const auto& after = s.electric.entities().at(0);
    INFO("round " << round << " file " << file_total << " db " << db_total);
    // Either the file is an older write this database recorded (not imported) or it is the
    // database's own last state (imported again, the same): never less, never more.
    CHECK(after.on_seconds + after.off_seconds + after.unknown_seconds == db_total);
    CHECK(after.last_seen_at == db_seen);
    // Time counted is exactly the time observed since the first observation.
    CHECK(after.last_seen_at - after.tracking_started_at == db_total * 1000);
  }
}
