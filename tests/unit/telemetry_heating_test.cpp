// telemetry/heating: classification, accumulation, bands, upload rows (validated by the platform
// oracle), reset handshake, config and the fixes (out-of-order, in-flight changes, throttle
// defers) of docs/compatibility.md#heating-usage.
#include <catch2/catch.hpp>

#include "common/clock.hpp"
#include "telemetry/heating.hpp"
#include "tests/unit/telemetry_a5_validator.hpp"

using namespace dinodia::telemetry;
using Json = nlohmann::json;

namespace {
const std::int64_t t0 = *dinodia::clock::parse_iso8601_millis("2026-01-10T08:00:00.000Z");

HeatingSnapshot climate(const char* state, double current, double target) {
  return extract_heating_snapshot(
      Json{{"state", state},
           {"attributes",
            {{"hvac_mode", state}, {"current_temperature", current}, {"temperature", target}}}});
}
HeatingSnapshot boiler_off() {
  return climate("off", 19, 21);
}
HeatingSnapshot boiler_on() {
  return climate("heat", 18, 21);
}

// Band B of the platform's table (the only band known here).
BandTable band_b_table() {
  Json rows = Json::array();
  const int idle[] = {900, 3600, 14400, 43200, 172800, 432000, 5184000};
  const int pct[] = {14, 24, 38, 58, 80, 94, 100};
  for (int i = 0; i < 7; ++i)
    rows.push_back({{"maxIdleSeconds", idle[i]}, {"outputPercent", pct[i]}});
  return *parse_band_table(Json{{"version", 1}, {"bands", {{"B", rows}}}});
}
}  // namespace

TEST_CASE("classification follows the 0.4.17 rule order", "[heating]") {
  auto cls = [](Json st) { return classify_heating(extract_heating_snapshot(st)); };
  auto known_on = [](Classification c) { return std::make_pair(c.known, c.is_on); };
  CHECK(known_on(cls({{"state", " Unavailable "}})) == std::make_pair(false, false));
  CHECK(known_on(cls({{"state", "unknown"},
                      {"attributes", {{"current_temperature", 1}, {"temperature", 5}}}})) ==
        std::make_pair(false, false));
  CHECK(known_on(cls({{"state", "OFF"}})) == std::make_pair(true, false));
  CHECK(known_on(cls({{"state", "heat"}, {"attributes", {{"hvac_mode", " off "}}}})) ==
        std::make_pair(true, false));
  CHECK(known_on(cls({{"state", "heat"},
                      {"attributes", {{"current_temperature", 18}, {"temperature", 21}}}})) ==
        std::make_pair(true, true));
  // target == current is not "greater": known off
  CHECK(known_on(cls({{"state", "heat"},
                      {"attributes", {{"current_temperature", 21}, {"temperature", 21}}}})) ==
        std::make_pair(true, false));
  // numeric strings count; the first finite key wins (current_temp after a non-numeric
  // current_temperature)
  CHECK(
      known_on(cls(
          {{"state", "heat"},
           {"attributes",
            {{"current_temperature", "n/a"}, {"current_temp", "17.5"}, {"target_temp", "18"}}}})) ==
      std::make_pair(true, true));
  // a labelled switch in state on has no temperatures: unknown (0.4.17 parity,
  // docs/compatibility.md#w18)
  CHECK(known_on(cls({{"state", "on"}})) == std::make_pair(false, false));
}

TEST_CASE("0.4.17 example: boiler OFF then ON accumulates with the run-start fraction",
          "[heating]") {
  HeatingTracker h;
  REQUIRE(h.observe("climate.boiler", HeatingLabel::boiler, boiler_off(), t0));
  const auto* e = h.find("climate.boiler");
  CHECK(e->off_seconds == 0);  // no time for the first observation
  REQUIRE(h.observe("climate.boiler", HeatingLabel::boiler, boiler_on(), t0 + 120'000));
  CHECK(e->off_seconds == 120);
  CHECK(e->on_seconds == 0);
  REQUIRE(e->heat_run_started_at == t0 + 120'000);
  CHECK(*e->heat_run_start_output_fraction == 1.0);  // no bands file
  REQUIRE(
      h.observe("climate.boiler", HeatingLabel::boiler, climate("heat", 18.5, 21), t0 + 300'000));
  CHECK(e->on_seconds == 180);
  CHECK(e->efficiency_on_seconds == 180);
  CHECK(e->efficiency_weighted_on_seconds == Approx(180.0));
  CHECK(e->off_seconds == 120);
  CHECK(e->unknown_seconds == 0);
}

TEST_CASE("band fractions: band B table, run-start window and hot maintaining", "[heating]") {
  auto table = band_b_table();
  CHECK(band_output_fraction(&table, 'B', 0) == Approx(0.14));
  CHECK(band_output_fraction(&table, 'B', 900) == Approx(0.14));
  CHECK(band_output_fraction(&table, 'B', 901) == Approx(0.24));
  CHECK(band_output_fraction(&table, 'B', 5'184'000) == Approx(1.0));
  CHECK(band_output_fraction(&table, 'B', 9e9) == Approx(1.0));  // past the last row: last row
  CHECK(band_output_fraction(&table, 'C', 100) == 1.0);          // band without rows: 1
  CHECK(band_output_fraction(nullptr, 'B', 100) == 1.0);
  CHECK(hot_maintaining_fraction(&table, 'B') == Approx(0.14));
  CHECK_FALSE(parse_band_table(Json{{"version", "1"}, {"bands", Json::object()}}));

  HeatingTracker h(table);
  h.observe("climate.b", HeatingLabel::boiler, boiler_on(), t0);              // first: no time
  h.observe("climate.b", HeatingLabel::boiler, boiler_off(), t0 + 60'000);    // ON->OFF: heat end
  h.observe("climate.b", HeatingLabel::boiler, boiler_on(), t0 + 1'060'000);  // idle 1000 s -> 24 %
  const auto* e = h.find("climate.b");
  // The first minute: no run recorded at t0 (first observation), so hot maintaining 14 %.
  CHECK(e->efficiency_weighted_on_seconds == Approx(60 * 0.14));
  CHECK(*e->heat_run_start_output_fraction == Approx(0.24));
  h.observe("climate.b", HeatingLabel::boiler, climate("heat", 18.2, 21),
            t0 + 1'660'000);  // +600 s, in window
  CHECK(e->efficiency_weighted_on_seconds == Approx(60 * 0.14 + 600 * 0.24));
  h.observe("climate.b", HeatingLabel::boiler, climate("heat", 18.4, 21),
            t0 + 2'060'000);  // +400 s, past 15 min
  CHECK(e->efficiency_weighted_on_seconds == Approx(60 * 0.14 + 600 * 0.24 + 400 * 0.14));
  CHECK(e->efficiency_on_seconds == 1060);
  CHECK(a5::heating_usage(h.upload_body(t0 + 2'100'000)) == "");
}

TEST_CASE("unknown time, the 24 h cap and transitions through unknown", "[heating]") {
  HeatingTracker h;
  h.observe("climate.r", HeatingLabel::radiator, climate("unavailable", 0, 0), t0);
  h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0 + 45'000);
  const auto* e = h.find("climate.r");
  CHECK(e->unknown_seconds == 45);
  h.observe("climate.r", HeatingLabel::radiator, climate("heat", 18.1, 21),
            t0 + 45'000 + 3LL * 86'400'000);
  CHECK(e->on_seconds == 86'400);  // a clock gap is capped at one day
}

TEST_CASE("out-of-order observations are ignored and lastSeenAt never moves backwards",
          "[heating][fix]") {
  HeatingTracker h;
  h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0);
  h.observe("climate.r", HeatingLabel::radiator, boiler_off(), t0 + 600'000);
  CHECK_FALSE(h.observe("climate.r", HeatingLabel::radiator, climate("heat", 10, 30), t0 + 300'000,
                        ObservationSource::poll));
  const auto* e = h.find("climate.r");
  CHECK(e->last_seen_at == t0 + 600'000);
  CHECK_FALSE(e->last_was_on);
  h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0 + 660'000);
  CHECK(e->on_seconds == 600);
  CHECK(e->off_seconds == 60);  // the overlap was not counted twice
}

TEST_CASE("event dedupe skips an unchanged snapshot, polls do not", "[heating]") {
  HeatingTracker h;
  h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0);
  CHECK_FALSE(h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0 + 10'000,
                        ObservationSource::event));
  CHECK(h.observe("climate.r", HeatingLabel::radiator, boiler_on(), t0 + 20'000,
                  ObservationSource::poll));
  CHECK(h.find("climate.r")->on_seconds == 20);
}

TEST_CASE("upload: at most 100 valid rows, least recently acknowledged first", "[heating][a5]") {
  HeatingTracker h;
  for (int i = 0; i < 150; ++i) {
    auto id = "climate.r" + std::to_string(i);
    h.observe(id, i % 2 ? HeatingLabel::boiler : HeatingLabel::radiator, boiler_off(), t0);
    h.observe(id, i % 2 ? HeatingLabel::boiler : HeatingLabel::radiator, boiler_on(), t0 + 1000);
  }
  Json first = h.upload_body(t0 + 2000);
  REQUIRE(first["devices"].size() == 100);
  CHECK(a5::heating_usage(first) == "");
  CHECK(first["devices"][1].contains("efficiencyBand"));
  CHECK_FALSE(first["devices"][0].contains("efficiencyBand"));  // radiators carry no boiler fields
  h.acknowledge(first, t0 + 3000);
  // everything dirties again (a poll), yet the 50 never-sent rows go first
  for (int i = 0; i < 150; ++i)
    h.observe("climate.r" + std::to_string(i), HeatingLabel::radiator, boiler_on(), t0 + 4000,
              ObservationSource::poll);
  Json second = h.upload_body(t0 + 5000);
  REQUIRE(second["devices"].size() == 100);
  CHECK(second["devices"][0]["entityId"] == "climate.r100");
  CHECK(second["devices"][49]["entityId"] == "climate.r149");
  CHECK(a5::heating_usage(second) == "");
  CHECK(h.upload_body(0)["capturedAt"] == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("a row that changed while its upload was in flight stays dirty", "[heating][fix]") {
  HeatingTracker h;
  h.observe("climate.a", HeatingLabel::radiator, boiler_on(), t0);
  h.observe("climate.b", HeatingLabel::radiator, boiler_on(), t0);
  Json sent = h.upload_body(t0 + 1000);
  h.observe("climate.b", HeatingLabel::radiator, boiler_off(), t0 + 1500);  // during the POST
  h.acknowledge(sent, t0 + 2000);
  CHECK_FALSE(h.find("climate.a")->dirty);
  CHECK(h.find("climate.b")->dirty);
  Json next = h.upload_body(t0 + 3000);
  REQUIRE(next["devices"].size() == 1);
  CHECK(next["devices"][0]["entityId"] == "climate.b");
  CHECK(next["devices"][0]["onSeconds"] == 1);
}

TEST_CASE("reset handshake: apply later resets only, ack until the platform confirms",
          "[heating][reset]") {
  HeatingTracker h;
  h.observe("climate.a", HeatingLabel::boiler, boiler_on(), t0);
  CHECK_FALSE(h.reset_due(Json(nullptr)));
  CHECK_FALSE(h.reset_due(Json("  ")));
  CHECK_FALSE(h.reset_due(Json("not a date")));
  REQUIRE(h.reset_due(Json(" 2026-01-10T09:00:00.000Z ")));
  CHECK_FALSE(h.reset_ack());
  h.apply_reset(" 2026-01-10T09:00:00.000Z ");
  CHECK(h.entries().empty());
  CHECK(h.reset_ack() == "2026-01-10T09:00:00.000Z");
  CHECK_FALSE(h.reset_due(Json("2026-01-10T09:00:00.000Z")));  // same: not again
  CHECK_FALSE(h.reset_due(Json("2026-01-10T08:59:59.000Z")));  // older: not again
  CHECK(h.reset_due(Json("2026-01-10T09:00:00.001Z")));
  h.reset_ack_confirmed("2026-01-01T00:00:00.000Z");  // a different value confirms nothing
  CHECK(h.reset_ack());
  h.reset_ack_confirmed("2026-01-10T09:00:00.000Z");
  CHECK_FALSE(h.reset_ack());
  // entities reappear with zero counters
  h.observe("climate.a", HeatingLabel::boiler, boiler_on(), t0 + 3'600'000);
  CHECK(h.find("climate.a")->on_seconds == 0);
  // the reset survives persistence
  HeatingTracker copy;
  copy.load_json(h.to_json());
  CHECK_FALSE(copy.reset_ack());
  CHECK_FALSE(copy.reset_due(Json("2026-01-10T09:00:00.000Z")));
}

TEST_CASE("heatingUsageConfig: per-entity bands replace the map, invalid ones dropped",
          "[heating]") {
  HeatingTracker h;
  CHECK_FALSE(h.apply_config(Json(nullptr)));
  REQUIRE(h.apply_config(
      Json{{"schemaVersion", 1},
           {"efficiencyBandsVersion", 3.7},
           {"defaultBoilerEfficiencyBand", "z"},
           {"boilerBandsByEntityId", {{"climate.a", " c "}, {"climate.b", "H"}, {" ", "A"}}}}));
  CHECK(h.config().efficiency_bands_version == 3);
  CHECK(h.config().default_band == 'B');
  CHECK(h.config().bands_by_entity_id == std::map<std::string, char>{{"climate.a", 'C'}});
  h.observe("climate.a", HeatingLabel::boiler, boiler_on(), t0);
  h.observe("climate.b", HeatingLabel::boiler, boiler_on(), t0);
  Json body = h.upload_body(t0 + 1);
  CHECK(body["devices"][0]["efficiencyBand"] == "C");
  CHECK(body["devices"][0]["efficiencyBandVersion"] == 3);
  CHECK(body["devices"][1]["efficiencyBand"] == "B");
  h.apply_config(Json{{"defaultBoilerEfficiencyBand", "d"}});
  CHECK(h.config().bands_by_entity_id.empty());
  CHECK(h.config().efficiency_bands_version == 3);  // kept when absent
}

TEST_CASE("persisted shape round-trips and invalid legacy entries are dropped", "[heating]") {
  HeatingTracker h;
  h.observe("climate.a", HeatingLabel::boiler, boiler_off(), t0);
  h.observe("climate.a", HeatingLabel::boiler, boiler_on(), t0 + 60'000);
  Json saved = h.to_json();
  CHECK(saved["entities"]["climate.a"]["lastSeenAt"] == "2026-01-10T08:01:00.000Z");
  saved["entities"]["bad.label"] = {{"label", "Cooler"},
                                    {"onSeconds", 1},
                                    {"offSeconds", 1},
                                    {"lastSeenAt", "2026-01-10T08:00:00.000Z"}};
  saved["entities"]["bad.time"] = {
      {"label", "Radiator"}, {"onSeconds", 1}, {"offSeconds", 1}, {"lastSeenAt", "yesterday"}};
  saved["entities"]["bad.counter"] = {{"label", "Radiator"},
                                      {"onSeconds", -1},
                                      {"offSeconds", 1},
                                      {"lastSeenAt", "2026-01-10T08:00:00.000Z"}};
  HeatingTracker loaded;
  CHECK(loaded.load_json(saved) == 3);
  REQUIRE(loaded.entries().size() == 1);
  CHECK(loaded.row(loaded.entries()[0]) == h.row(h.entries()[0]));
  CHECK(loaded.find("climate.a")->heat_run_started_at == t0 + 60'000);
  CHECK(loaded.load_json(Json{{"schemaVersion", 1}, {"entities", Json::object()}}) == 0);
  CHECK(loaded.entries().size() == 1);  // a schema-1 state is ignored, not applied
}

TEST_CASE("event throttle defers every event instead of dropping it", "[heating][fix]") {
  EventThrottle t(1000);
  CHECK(t.admit("climate.a", Json{{"n", 1}}, 10'000));
  CHECK_FALSE(t.admit("climate.a", Json{{"n", 2}}, 10'300));
  CHECK_FALSE(t.admit("climate.a", Json{{"n", 3}}, 10'600));  // held behind n=2, not over it
  CHECK(t.admit("climate.b", Json{{"n", 9}}, 10'600));        // per entity
  CHECK(t.next_due() == 11'000);
  CHECK(t.take_due(10'999).empty());
  auto due = t.take_due(11'000);
  REQUIRE(due.size() == 2);
  CHECK(due[0]["n"] == 2);
  CHECK(due[1]["n"] == 3);
  CHECK_FALSE(t.next_due());
  CHECK_FALSE(t.admit("climate.a", Json{{"n", 4}}, 11'500));  // interval restarts at release
  CHECK(EventThrottle(0).admit("x", Json(), 0));
}

TEST_CASE("event throttle: a poll takes one entity's held events first - floods are bounded",
          "[heating][fix]") {
  EventThrottle t(60'000);
  CHECK(t.admit("climate.a", Json{{"n", 0}}, 0));
  CHECK_FALSE(t.admit("climate.a", Json{{"n", 1}}, 10));
  CHECK(t.admit("climate.b", Json{{"n", 1}}, 10));
  auto a = t.take_entity("climate.a", 20);
  REQUIRE(a.size() == 1);
  CHECK(a[0]["n"] == 1);
  CHECK(t.take_entity("climate.a", 20).empty());
  for (int i = 0; i < static_cast<int>(EventThrottle::kMaxHeldPerEntity) + 5; ++i) {
    CHECK_FALSE(t.admit("climate.a", Json{{"n", 100 + i}}, 30 + i));
  }
  CHECK(t.overflowed() == 5);
  auto flood = t.take_due(1'000'000);
  std::size_t a_count = 0;
  Json last_a;
  for (const auto& ev : flood) {
    if (ev["n"].get<int>() >= 100) {
      ++a_count;
      last_a = ev;
    }
  }
  CHECK(a_count == EventThrottle::kMaxHeldPerEntity);
  CHECK(last_a["n"] == 100 + static_cast<int>(EventThrottle::kMaxHeldPerEntity) + 4);
}

TEST_CASE("throttled on -> off -> on 50 ms apart: the off interval is counted as off",
          "[heating][fix]") {
  // HA fires the three events within 100 ms of wall time, but their time_fired are minutes
  // apart (a burst after HA reconnects, or an automation replaying): the throttle may delay
  // them, never merge them.
  EventThrottle throttle(1000);
  HeatingTracker h;
  auto event = [](const char* state, double current, double target, std::int64_t fired) {
    return Json{{"n", state}, {"current", current}, {"target", target}, {"fired", fired}};
  };
  auto process = [&](const Json& ev) {
    h.observe("climate.boiler", HeatingLabel::boiler,
              climate(ev["n"].get<std::string>().c_str(), ev["current"], ev["target"]),
              ev["fired"].get<std::int64_t>());
  };
  REQUIRE(throttle.admit("climate.boiler", event("heat", 18, 21, t0), 5'000'000));
  process(event("heat", 18, 21, t0));                        // on at t0
  const Json seq[] = {event("heat", 22, 21, t0 + 60'000),    // off at t0+60 s
                      event("heat", 18, 21, t0 + 180'000)};  // on again at t0+180 s
  std::int64_t wall = 5'000'050;
  for (const auto& ev : seq) {
    if (throttle.admit("climate.boiler", ev, wall)) process(ev);
    wall += 50;
  }
  for (const auto& ev : throttle.take_due(5'001'000)) process(ev);
  h.observe("climate.boiler", HeatingLabel::boiler, boiler_on(), t0 + 300'000,
            ObservationSource::poll);
  const HeatingEntry* e = h.find("climate.boiler");
  REQUIRE(e);
  CHECK(e->off_seconds == 120);
  CHECK(e->on_seconds == 60 + 120);
  CHECK(e->efficiency_on_seconds == 180);
}

TEST_CASE("state_changes counts only what later accumulation depends on", "[heating][fix]") {
  HeatingTracker h;
  CHECK(h.state_changes() == 0);
  h.observe("climate.a", HeatingLabel::boiler, boiler_off(), t0);
  CHECK(h.state_changes() == 1);  // a new entry
  h.observe("climate.a", HeatingLabel::boiler, boiler_off(), t0 + 60'000, ObservationSource::poll);
  h.observe("climate.a", HeatingLabel::boiler, climate("off", 18, 21), t0 + 70'000);
  CHECK(h.state_changes() == 1);  // same classification: elapsed time only
  CHECK(h.revision() > 1);
  h.observe("climate.a", HeatingLabel::boiler, boiler_on(), t0 + 80'000);
  CHECK(h.state_changes() == 2);  // off -> on
  h.observe("climate.a", HeatingLabel::boiler, climate("unavailable", 18, 21), t0 + 90'000);
  CHECK(h.state_changes() == 3);  // on -> unknown
  h.observe("climate.a", HeatingLabel::boiler, climate("heat", 18, 21), t0 + 10'000);
  CHECK(h.state_changes() == 3);  // out of order: ignored
  h.observe("climate.a", HeatingLabel::radiator, climate("unknown", 18, 21), t0 + 95'000,
            ObservationSource::poll);
  CHECK(h.state_changes() == 4);  // relabelled
}
