// telemetry/usage_store: SQLite persistence of usage state (survives kill -9 mid-write) and the
// one-time import of the 0.4.17 JSON files (docs/compatibility.md#usage-files).
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "common/clock.hpp"
#include "telemetry/usage_store.hpp"

using namespace dinodia::telemetry;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
struct Dir {
  fs::path path;
  Dir() {
    char tmpl[] = "/tmp/telemetry-store-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~Dir() { fs::remove_all(path); }
  std::string db() const { return (path / "dinodia-agent.db").string(); }
  std::string file(const char* name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};
const std::int64_t t0 = *dinodia::clock::parse_iso8601_millis("2026-01-10T08:00:00.000Z");
HeatingSnapshot on() {
  return {"heat", "heat", 18.0, 21.0};
}
}  // namespace

TEST_CASE("usage state round-trips through the database", "[store]") {
  Dir d;
  HeatingTracker h;
  ElectricTracker e;
  h.observe("climate.a", HeatingLabel::boiler, on(), t0);
  h.observe("climate.a", HeatingLabel::boiler, on(), t0 + 60'000, ObservationSource::poll);
  e.observe({"light.a", "A", std::string("k"), std::string("Kitchen")}, "on", t0);
  {
    UsageStore s(d.db());
    s.save(h);
    s.save(e);
  }
  UsageStore s(d.db());
  HeatingTracker h2;
  ElectricTracker e2;
  REQUIRE(s.load(h2));
  REQUIRE(s.load(e2));
  CHECK(h2.upload_body(1) == h.upload_body(1));
  CHECK(e2.payload(1) == e.payload(1));
  CHECK(h2.find("climate.a")->on_seconds == 60);
}

TEST_CASE("kill -9 during a stream of saves leaves a consistent, recent state", "[store][crash]") {
  Dir d;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    UsageStore s(d.db());
    HeatingTracker h;
    for (std::int64_t i = 0;; ++i) {  // saves until killed
      h.observe("climate.a", HeatingLabel::radiator, on(), t0 + i * 1000, ObservationSource::poll);
      s.save(h);
      if (i == 20) std::ofstream(d.path / "ready") << "1";
    }
  }
  while (!fs::exists(d.path / "ready")) usleep(1000);
  usleep(50'000);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  UsageStore s(d.db());
  HeatingTracker h;
  REQUIRE(s.load(h));
  const auto* e = h.find("climate.a");
  REQUIRE(e != nullptr);
  CHECK(e->on_seconds >= 20);
  // totals and lastSeenAt describe the same moment: nothing half-written
  CHECK(e->last_seen_at == t0 + e->on_seconds * 1000);
}

TEST_CASE("both trackers are saved in one transaction, only when changed", "[store]") {
  Dir d;
  HeatingTracker h;
  ElectricTracker e;
  h.observe("climate.a", HeatingLabel::boiler, on(), t0);
  e.observe({"light.a", "A", std::nullopt, std::nullopt}, "off", t0);
  {
    UsageStore s(d.db());
    s.save(h, e);
    // The second tracker changes afterwards; a save of both picks it up.
    e.observe({"light.a", "A", std::nullopt, std::nullopt}, "on", t0 + 5'000);
    s.save(h, e);
  }
  UsageStore s(d.db());
  HeatingTracker h2;
  ElectricTracker e2;
  REQUIRE(s.load(h2));
  REQUIRE(s.load(e2));
  CHECK(h2.upload_body(1) == h.upload_body(1));
  REQUIRE(e2.entities().size() == 1);
  CHECK(e2.entities()[0].off_seconds == 5);
  CHECK(e2.entities()[0].last_was_on);
}

TEST_CASE("legacy files are imported once, validated, and left in place", "[store][legacy]") {
  Dir d;
  const std::string heating = d.file("heating_usage_state.json", R"({
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
  const std::string electric = d.file("electric_usage_state.json", R"({
    "schemaVersion": 1, "updatedAt": null, "lastResetAt": null, "resetAckPendingAt": null,
    "entities": {"light.a": {"entityId": "light.a", "entityName": "A", "trackingStartedAt": "2026-01-01T00:00:00.000Z",
      "trackingEpoch": "e1", "assignmentStartedAt": "2026-01-01T00:00:00.000Z", "assignmentEpoch": "a1",
      "areaId": null, "areaName": null, "onSeconds": 10, "offSeconds": 20, "unknownSeconds": 30,
      "lastSeenAt": "2026-01-01T00:01:00.000Z", "lastWasOn": true, "lastWasKnown": true, "retired": false, "dirty": true}},
    "pending": []})");
  {
    UsageStore s(d.db());
    HeatingTracker h;
    ElectricTracker e;
    auto r = s.import_legacy_once(heating, electric, h, e);
    CHECK(r.heating_imported);
    CHECK(r.electric_imported);
    CHECK(r.dropped_entries == 1);
    CHECK(h.find("climate.boiler")->on_seconds == 3600);
    CHECK(h.config().bands_by_entity_id.at("climate.boiler") == 'C');
    CHECK(h.reset_ack() == "2025-12-01T00:00:00.000Z");
    CHECK(e.payload(0)["devices"][0]["unknownSeconds"] == 30);
  }
  CHECK(fs::exists(heating));
  // Second start: the database is the source of truth, the legacy files are not re-read.
  std::ofstream(heating) << R"({"schemaVersion": 2, "entities": {}})";
  UsageStore s(d.db());
  HeatingTracker h;
  ElectricTracker e;
  CHECK(s.import_legacy_once(heating, electric, h, e).already_done);
  REQUIRE(s.load(h));
  CHECK(h.find("climate.boiler")->efficiency_weighted_on_seconds == Approx(3600.5));
}

TEST_CASE("legacy import: missing or wrong-schema files import nothing, unreadable ones retry",
          "[store][legacy]") {
  Dir d;
  const std::string v1 = d.file("heating.json", R"({"schemaVersion": 1, "entities": {}})");
  UsageStore s(d.db());
  HeatingTracker h;
  ElectricTracker e;
  if (geteuid() != 0) {
    const std::string locked = d.file("electric.json", "{}");
    fs::permissions(locked, fs::perms::none);
    auto r = s.import_legacy_once(v1, locked, h, e);
    CHECK(r.retry_next_start);
    CHECK_FALSE(s.import_legacy_once(v1, locked, h, e).already_done);
  }
  auto r = s.import_legacy_once(v1, (d.path / "absent.json").string(), h, e);
  CHECK_FALSE(r.heating_imported);
  CHECK_FALSE(r.electric_imported);
  CHECK(s.import_legacy_once(v1, "", h, e).already_done);
}

TEST_CASE("an unusable database path is a clear error", "[store]") {
  CHECK_THROWS_AS(UsageStore("/nonexistent-dir/x/dinodia-agent.db"), StoreError);
}
