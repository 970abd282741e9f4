// telemetry/electric: the 0.4.17 scenarios, row validity on the newer platform, the 200-row cap
// with exact acknowledgement, and the fixes of docs/compatibility.md#electric-usage.
#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "common/clock.hpp"
#include "telemetry/electric.hpp"
#include "tests/unit/telemetry_a5_validator.hpp"

using namespace dinodia::telemetry;
using Json = nlohmann::json;

namespace {
std::int64_t at(const char* hhmm) {
  return *dinodia::clock::parse_iso8601_millis(std::string("2026-01-10T") + hhmm + ":00.000Z");
}
ElectricDescriptor lamp(const char* area, const char* id = "light.kitchen") {
  return {id, "Kitchen light", std::string(area), std::string(area) + " name"};
}
}  // namespace

TEST_CASE("stateClass", "[electric]") {
  CHECK(classify_electric("on").known);
  CHECK(classify_electric(" ON ").is_on);
  CHECK_FALSE(classify_electric("off").is_on);
  CHECK(classify_electric("off").known);
  CHECK_FALSE(classify_electric("unknown").known);
  CHECK_FALSE(classify_electric("unavailable").known);
  CHECK_FALSE(classify_electric("dim").known);
}

TEST_CASE("0.4.17 scenario: an area change mid-segment closes the segment", "[electric]") {
  ElectricTracker t({200, 600});
  REQUIRE(t.observe(lamp("kitchen"), "on", at("10:00")));
  REQUIRE(t.observe(lamp("kitchen"), "on", at("10:01")));
  CHECK(t.entities()[0].on_seconds == 60);
  const std::string old_tracking = t.entities()[0].tracking_epoch;
  REQUIRE(t.observe(lamp("hall"), "off", at("10:02")));
  Json p = t.payload(at("10:03"));
  REQUIRE(p["devices"].size() == 2);
  CHECK(a5::electric_usage(p) == "");
  CHECK(p["devices"][0]["areaId"] == "kitchen");
  CHECK(p["devices"][0]["retired"] == true);
  CHECK(p["devices"][0]["onSeconds"] == 120);
  CHECK(p["devices"][0]["trackingEpoch"] == old_tracking);
  CHECK(p["devices"][1]["areaId"] == "hall");
  CHECK(p["devices"][1]["onSeconds"] == 0);
  CHECK(p["devices"][1]["lastWasOn"] == false);
  CHECK(p["devices"][1]["trackingEpoch"] != old_tracking);
  CHECK(p["devices"][1]["assignmentEpoch"] != p["devices"][0]["assignmentEpoch"]);
  CHECK(p["devices"][1]["assignmentStartedAt"] == "2026-01-10T10:02:00.000Z");
  CHECK_FALSE(p["devices"][0].contains("retiredAt"));  // not sent, as in 0.4.17
}

TEST_CASE("0.4.17 scenario: acknowledgement of exactly the uploaded rows", "[electric]") {
  ElectricTracker t;
  t.observe({"switch.lamp", "", std::nullopt, std::nullopt}, "off", at("10:00"));
  ElectricTracker reloaded;
  reloaded.load_json(t.to_json());
  Json p = reloaded.payload(at("10:01"));
  REQUIRE(p["devices"].size() == 1);
  CHECK(p["devices"][0]["lastWasKnown"] == true);
  CHECK(p["devices"][0]["entityName"] == "switch.lamp");
  CHECK(p["devices"][0]["areaId"].is_null());
  CHECK(a5::electric_usage(p) == "");
  reloaded.acknowledge(Json{{"devices", Json::array()}});
  CHECK_FALSE(reloaded.payload(at("10:01")).is_null());
  reloaded.acknowledge(p);
  CHECK(reloaded.payload(at("10:01")).is_null());
}

TEST_CASE("gaps longer than the unknown gap count as unknown", "[electric]") {
  ElectricTracker t({200, 600});
  t.observe(lamp("k"), "on", at("10:00"));
  t.observe(lamp("k"), "on", at("10:10"));  // 600 s: not more than the gap
  CHECK(t.entities()[0].on_seconds == 600);
  t.observe(lamp("k"), "off", at("10:20") + 1000);  // 601 s
  CHECK(t.entities()[0].on_seconds == 600);
  CHECK(t.entities()[0].unknown_seconds == 601);
  CHECK(ElectricTracker({200, 0}).payload(0).is_null());  // 0 falls back to 600, no crash
}

TEST_CASE("out-of-order observations are ignored (seeding after restart)", "[electric][fix]") {
  ElectricTracker t;
  t.observe(lamp("k"), "on", at("10:00"));
  t.observe(lamp("k"), "on", at("10:05"));
  CHECK_FALSE(t.observe(lamp("k"), "off", at("09:00")));  // HA last_updated from before
  t.observe(lamp("k"), "on", at("10:06"));
  CHECK(t.entities()[0].on_seconds == 360);
  CHECK(t.entities()[0].unknown_seconds == 0);
}

TEST_CASE("uploads are capped at 200 rows and only sent rows are acknowledged", "[electric][fix]") {
  ElectricTracker t({300, 600});
  for (int i = 0; i < 250; ++i)
    t.observe({"light.l" + std::to_string(i), "", std::nullopt, std::nullopt}, "on", at("10:00"));
  Json p = t.payload(at("10:01"));
  REQUIRE(p["devices"].size() == 200);
  CHECK(a5::electric_usage(p) == "");
  t.acknowledge(p);
  Json rest = t.payload(at("10:02"));
  REQUIRE(rest["devices"].size() == 50);
  CHECK(rest["devices"][0]["entityId"] == "light.l200");
}

TEST_CASE("a row that changed in flight stays dirty, retired rows are deleted on ack",
          "[electric][fix]") {
  ElectricTracker t;
  t.observe(lamp("k", "light.a"), "on", at("10:00"));
  t.observe(lamp("k", "light.b"), "on", at("10:00"));
  Json p = t.payload(at("10:01"));
  t.observe(lamp("k", "light.b"), "off", at("10:01"));  // during the POST
  t.acknowledge(p);
  Json next = t.payload(at("10:02"));
  REQUIRE(next["devices"].size() == 1);
  CHECK(next["devices"][0]["entityId"] == "light.b");
  CHECK(next["devices"][0]["onSeconds"] == 60);
  REQUIRE(t.retire("light.b", at("10:03")));
  Json r = t.payload(at("10:04"));
  CHECK(r["devices"][0]["retired"] == true);
  CHECK(r["devices"][0]["offSeconds"] == 120);
  t.acknowledge(r);
  REQUIRE(t.entities().size() == 1);
  CHECK(t.entities()[0].entity_id == "light.a");
}

TEST_CASE("a retired entry observed again comes back with the same epochs", "[electric]") {
  ElectricTracker t;
  t.observe(lamp("k"), "on", at("10:00"));
  auto epoch = t.entities()[0].assignment_epoch;
  t.retire("light.kitchen", at("10:01"));
  t.observe(lamp("other"), "on", at("10:02"));
  CHECK(t.entities()[0].assignment_epoch == epoch);
  CHECK_FALSE(t.entities()[0].retired);
  CHECK(t.pending().empty());
}

TEST_CASE("max tracked entities, bounded pending and platform length limits", "[electric]") {
  ElectricSettings s;
  s.max_tracked_entities = 2;
  s.max_pending_segments = 1;
  ElectricTracker t(s);
  CHECK(t.observe(lamp("a", "light.a"), "on", at("10:00")));
  CHECK(t.observe(lamp("a", "light.b"), "on", at("10:00")));
  CHECK_FALSE(t.observe(lamp("a", "light.c"), "on", at("10:00")));
  t.observe(lamp("b", "light.a"), "on", at("10:01"));  // pending 1
  t.observe(lamp("c", "light.a"), "on", at("10:02"));  // at the cap: counted in the open segment
  CHECK(t.pending().size() == 1);
  CHECK(t.merged_area_changes() == 1);
  CHECK(t.entities()[0].on_seconds == 60);
  CHECK(*t.entities()[0].area_id == "c");
  ElectricTracker u;
  std::string name;
  for (int i = 0; i < 250; ++i) name += "\xC3\xA9";  // 250 x 'é'
  u.observe({"light.x", name, std::string(200, 'i'), name}, "on", at("10:00"));
  Json p = u.payload(at("10:01"));
  CHECK(a5::electric_usage(p) == "");
  CHECK(p["devices"][0]["entityName"].get<std::string>().size() == 400);  // 200 code points
  CHECK(p["devices"][0]["areaId"].get<std::string>().size() == 128);
}

TEST_CASE("reset clears everything once and keeps the ack pending until acknowledged",
          "[electric][reset]") {
  ElectricTracker t;
  t.observe(lamp("k"), "on", at("10:00"));
  CHECK_FALSE(t.apply_reset("garbage"));
  REQUIRE(t.apply_reset("2026-01-10T11:00:00Z"));
  CHECK(t.entities().empty());
  CHECK(t.reset_acknowledgement() == "2026-01-10T11:00:00.000Z");
  CHECK_FALSE(t.apply_reset("2026-01-10T11:00:00.000Z"));  // same instant: no-op
  t.acknowledge_reset("2026-01-10T11:00:00Z");             // not the exact string
  CHECK(t.reset_acknowledgement());
  t.acknowledge_reset("2026-01-10T11:00:00.000Z");
  CHECK_FALSE(t.reset_acknowledgement());
}

TEST_CASE("epochs are random UUID v4", "[electric]") {
  std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto u = uuid_v4();
    CHECK(std::regex_match(u, re));
    seen.insert(u);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("load drops invalid entries and keeps pending segments", "[electric]") {
  ElectricTracker t;
  t.observe(lamp("k"), "on", at("10:00"));
  t.observe(lamp("h"), "on", at("10:01"));
  Json saved = t.to_json();
  saved["entities"]["sensor.x"] = saved["entities"]["light.kitchen"];
  saved["entities"]["sensor.x"]["entityId"] = "sensor.x";
  saved["pending"].push_back({{"entityId", "light.y"}});  // no epochs
  ElectricTracker loaded;
  CHECK(loaded.load_json(saved) == 2);
  CHECK(loaded.entities().size() == 1);
  CHECK(loaded.pending().size() == 1);
  CHECK(loaded.payload(0)["devices"] == t.payload(0)["devices"]);
}

TEST_CASE("state_changes: new, re-areaed, reclassified, retired and revived segments only",
          "[electric][fix]") {
  ElectricTracker t({200, 600});
  CHECK(t.state_changes() == 0);
  t.observe(lamp("kitchen"), "on", at("10:00"));
  CHECK(t.state_changes() == 1);  // new segment
  t.observe(lamp("kitchen"), "on", at("10:01"));
  t.observe(lamp("kitchen"), "ON ", at("10:02"));
  CHECK(t.state_changes() == 1);  // same state: elapsed time only
  t.observe(lamp("kitchen"), "off", at("10:03"));
  CHECK(t.state_changes() == 2);
  t.observe(lamp("kitchen"), "unavailable", at("10:04"));
  CHECK(t.state_changes() == 3);
  t.observe(lamp("hall"), "unavailable", at("10:05"));
  CHECK(t.state_changes() == 4);  // area change: new epochs
  t.observe(lamp("hall"), "on", at("10:00"));
  CHECK(t.state_changes() == 4);  // out of order: ignored
  REQUIRE(t.retire("light.kitchen", at("10:06")));
  CHECK(t.state_changes() == 5);
  t.observe(lamp("hall"), "unavailable", at("10:07"));
  CHECK(t.state_changes() == 6);  // revived
}
