// Telemetry end to end (docs/compatibility.md#telemetry): the real agent between fake_ha
// (Supervisor + Core stand-in) and fake_platform (which validates every uploaded telemetry field
// with the platform's rules). Covers the electric pipeline, LAN address and areas uploads, restart
// and kill -9 without loss or double counting, Home Assistant restarting, and the Zigbee endpoints'
// error mapping (docs/compatibility.md#zigbee) row by row, as far as the fake can produce each
// failure.
//
// Stock fake_ha data used here (tests/fakes/fake_ha*.cpp, --entities 30): the label registry
// holds one label {label_id:"light", name:"Light"}; every 5th registry entity carries it, which
// makes switch.device_19 (state "on") and light.device_24 (state "off") the electric selection;
// /network/info has eth0 primary 192.168.1.50/24; the area registry holds Kitchen.
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

const std::string kHubToken = "telemetry-hub-token-5b1e";
const std::string kSupervisorToken = "supervisor-secret-telemetry-91d2";
const std::string kSerial = "HUB-TELEMETRY-1";
const std::string kBootstrap = "bootstrap-secret-telemetry-3c8e";
const std::string kAuth = "Bearer " + kHubToken;

// Every 200 ms until `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  return wait_until(condition, timeout, std::chrono::milliseconds(200));
}

class Stack {
 public:
  explicit Stack(bool with_platform = true)
      : fake_(dir_, kSupervisorToken, 30),
        agent_({dir_.path(),
                "",
                fake_.url(),
                kSupervisorToken,
                {{"DINODIA_SYNC_INTERVAL_SECONDS", "1"}, {"DINODIA_TELEMETRY_POLL_SECONDS", "1"}},
                30s}) {
    ha_port = fake_.port();
    if (with_platform) {
      platform_ = std::make_unique<FakePlatformProcess>(dir_, kSerial, kBootstrap,
                                                        FakePlatformOptions{"", false, {}});
      platform_port = platform_->port();
    }
  }

  void start_agent(json extra_options = json::object(),
                   std::map<std::string, std::string> extra_env = {}) {
    json options = {{"port", free_loopback_port()},
                    {"hub_tokens", json::array({kHubToken})},
                    {"heating_usage_tracking_enabled", true},
                    {"electric_usage_tracking_enabled", true},
                    {"platform_sync_enabled", platform_port != 0}};
    if (platform_port != 0) {
      options["platform_base_url"] = "http://127.0.0.1:" + std::to_string(platform_port);
      options["hub_agent_id"] = kSerial;
      options["hub_agent_secret"] = kBootstrap;
    }
    options.update(extra_options);
    port = agent_.start(options, extra_env);
  }

  Process& agent() { return agent_.process(); }
  void drop_agent() { agent_.discard(); }  // SIGKILL

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
  httplib::Client ha() const { return fake_.client(); }
  const FakeHaProcess& ha_fake() const { return fake_; }

  json platform_state() const { return platform_ ? platform_->state_if_available() : json(); }
  FakePlatformProcess& platform() { return *platform_; }

  std::vector<json> token_state_bodies() const {
    return platform_ ? platform_->token_state_bodies() : std::vector<json>{};
  }
  void check_no_drops() const {
    if (platform_) platform_->check_no_telemetry_drops();
  }

  std::string all_logs() { return fake_.process().log() + agent_.all_logs(); }

  int ha_port = 0;
  int platform_port = 0;
  int port = 0;

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  std::unique_ptr<FakePlatformProcess> platform_;
  AgentProcess agent_;
};

// The electric row for `entity_id` in a token-state body, if any.
std::optional<json> electric_row(const json& body, const std::string& entity_id) {
  if (!body.contains("electricUsage")) return std::nullopt;
  for (const auto& row : body["electricUsage"]["devices"]) {
    if (row.value("entityId", "") == entity_id) return row;
  }
  return std::nullopt;
}

std::int64_t ms(const json& iso) {
  return dinodia::clock::parse_iso8601_millis(iso.get<std::string>()).value_or(-1);
}

// Invariants of one electric row: time is never counted twice (the counters fit into the
// segment's observed span) and nothing lies in the future.
// Retired rows are skipped: their counters run to the moment of retirement, which is not sent
// (docs/compatibility.md#electric-usage); the area-change test checks those against the next
// segment instead.
void check_electric_row(const json& row) {
  INFO(row.dump());
  if (row.value("retired", false)) return;
  const std::int64_t span_s = (ms(row["lastSeenAt"]) - ms(row["assignmentStartedAt"])) / 1000;
  const std::int64_t counted = row["onSeconds"].get<std::int64_t>() +
                               row["offSeconds"].get<std::int64_t>() +
                               row["unknownSeconds"].get<std::int64_t>();
  CHECK(counted <= span_s + 1);
  CHECK(ms(row["lastSeenAt"]) <= dinodia::clock::unix_millis() + 1000);
}

std::string get_body(httplib::Client c, const std::string& path, int& status) {
  auto r = c.Get(path.c_str(), httplib::Headers{{"Authorization", kAuth}});
  status = r ? r->status : -1;
  return r ? r->body : "";
}

std::string post_body(httplib::Client c, const std::string& path, const std::string& body,
                      int& status, bool auth = true) {
  httplib::Headers h;
  if (auth) h.emplace("Authorization", kAuth);
  auto r = c.Post(path.c_str(), h, body, "application/json");
  status = r ? r->status : -1;
  return r ? r->body : "";
}

}  // namespace

TEST_CASE("electric usage, LAN address and areas reach the platform with no row dropped",
          "[telemetry][integration]") {
  Stack stack;
  stack.start_agent({{"sync_status_token", "status-tok-1"}});

  json seen;
  REQUIRE(eventually(
      [&] {
        stack.check_no_drops();
        for (const auto& b : stack.token_state_bodies()) {
          auto on = electric_row(b, "switch.device_19");
          if (on && on->value("onSeconds", 0) >= 2 && b.contains("lanBaseUrl")) {
            seen = b;
            return true;
          }
        }
        return false;
      },
      30s));
  INFO(seen.dump());
  CHECK(seen["lanBaseUrl"] == "http://192.168.1.50:8123");
  CHECK(seen["electricUsage"]["schemaVersion"] == 1);
  const json on = *electric_row(seen, "switch.device_19");
  CHECK(on["label"] == "Light");
  CHECK(on["lastWasOn"] == true);
  CHECK(on["lastWasKnown"] == true);
  CHECK(on["offSeconds"] == 0);
  check_electric_row(on);

  // The lamp that is off accrues off time, never on time.
  REQUIRE(eventually(
      [&] {
        for (const auto& b : stack.token_state_bodies()) {
          auto off = electric_row(b, "light.device_24");
          if (off && off->value("offSeconds", 0) >= 2) {
            CHECK(off->value("onSeconds", -1) == 0);
            check_electric_row(*off);
            return true;
          }
        }
        return false;
      },
      20s));

  // Areas snapshot (haAreas) went up once and the platform stored it.
  REQUIRE(eventually(
      [&] {
        json hub = stack.platform_state().value("hub", json::object());
        return hub.value("lastReportedHaAreas", json()).is_object() ||
               hub.value("lastReportedHaAreas", json()).is_array();
      },
      20s));
  CHECK(stack.platform_state()["hub"]["lastReportedLanBaseUrl"] == "http://192.168.1.50:8123");

  // Sync status carries the tracker's numbers (docs/compatibility.md#sync-status).
  {
    auto c = stack.client();
    auto r =
        c.Get("/_dinodia/sync-status", httplib::Headers{{"Authorization", "Bearer status-tok-1"}});
    REQUIRE(r);
    REQUIRE(r->status == 200);
    json st = json::parse(r->body);
    INFO(r->body);
    CHECK(st["electricUsage"]["enabled"] == true);
    CHECK(st["electricUsage"]["trackedEntities"] == 2);
    CHECK(st["electricUsage"]["pendingSegments"] == 0);
    CHECK(st["electricUsage"]["lastResetAt"].is_null());
    CHECK_FALSE(st["electricUsage"].contains("placeholder"));
  }
  stack.check_no_drops();
  const std::string logs = stack.all_logs();
  CHECK(logs.find(kSupervisorToken) == std::string::npos);
  CHECK(logs.find(kBootstrap) == std::string::npos);
  CHECK(logs.find(kHubToken) == std::string::npos);
}

TEST_CASE("usage survives kill -9 and restart without loss or double counting",
          "[telemetry][integration]") {
  Stack stack;
  stack.start_agent();

  auto latest_row = [&](const std::string& id) -> std::optional<json> {
    std::optional<json> last;
    for (const auto& b : stack.token_state_bodies()) {
      if (auto r = electric_row(b, id)) last = r;
    }
    return last;
  };
  REQUIRE(eventually(
      [&] {
        auto r = latest_row("switch.device_19");
        return r && r->value("onSeconds", 0) >= 3;
      },
      30s));
  const json before = *latest_row("switch.device_19");

  // kill -9 in the middle of the upload cadence (a sync runs every second).
  ::kill(stack.agent().pid(), SIGKILL);
  stack.agent().wait(5s);
  stack.drop_agent();
  std::this_thread::sleep_for(2s);
  stack.start_agent();

  // Same segment (epochs kept), counters continue from at least where they were, the gap while
  // the agent was down is counted once, and the counters never exceed the observed span.
  REQUIRE(eventually(
      [&] {
        auto r = latest_row("switch.device_19");
        return r && ms((*r)["lastSeenAt"]) > ms(before["lastSeenAt"]) + 3000;
      },
      30s));
  const json after = *latest_row("switch.device_19");
  INFO(before.dump() << "\n" << after.dump());
  CHECK(after["trackingEpoch"] == before["trackingEpoch"]);
  CHECK(after["assignmentEpoch"] == before["assignmentEpoch"]);
  CHECK(after["onSeconds"].get<std::int64_t>() >= before["onSeconds"].get<std::int64_t>());
  check_electric_row(after);

  // A clean stop (SIGTERM) flushes; the next start continues again.
  stack.agent().signal(SIGTERM);
  REQUIRE(stack.agent().wait(10s) == 0);
  CHECK(stack.agent().count_log("Stopped") == 1);
  stack.drop_agent();
  stack.start_agent();
  REQUIRE(eventually(
      [&] {
        auto r = latest_row("switch.device_19");
        return r && ms((*r)["lastSeenAt"]) > ms(after["lastSeenAt"]) + 2000;
      },
      30s));
  const json third = *latest_row("switch.device_19");
  CHECK(third["trackingEpoch"] == before["trackingEpoch"]);
  CHECK(third["onSeconds"].get<std::int64_t>() >= after["onSeconds"].get<std::int64_t>());
  check_electric_row(third);
  stack.check_no_drops();
}

TEST_CASE(
    "kill -9 while an upload is in flight: its rows are sent again - nothing lost or "
    "double-counted",
    "[telemetry][integration]") {
  Stack stack;
  stack.start_agent();
  const std::string id = "switch.device_19";
  auto rows = [&] {
    std::vector<json> out;
    for (const auto& b : stack.token_state_bodies()) {
      if (auto r = electric_row(b, id)) out.push_back(*r);
    }
    return out;
  };
  REQUIRE(eventually(
      [&] {
        auto r = rows();
        return !r.empty() && r.back().value("onSeconds", 0) >= 2;
      },
      30s));

  // The next token-state request is held by the platform for 3 s, then processed: the platform
  // keeps the rows, but the agent, killed meanwhile, never sees the answer.
  stack.platform().control("/_fake/failure", json{{"mode", "hang"}, {"seconds", 3}, {"count", 1}});
  std::this_thread::sleep_for(1500ms);  // syncs run every second: one is waiting on the platform
  const std::int64_t last_answered = ms(rows().back()["lastSeenAt"]);
  ::kill(stack.agent().pid(), SIGKILL);
  stack.agent().wait(5s);
  stack.drop_agent();
  // The held request is processed after the agent died: its rows are the newest.
  REQUIRE(eventually([&] { return ms(rows().back()["lastSeenAt"]) > last_answered; }, 10s));
  const json in_flight = rows().back();

  stack.start_agent();
  REQUIRE(eventually(
      [&] {
        auto r = rows();
        return ms(r.back()["lastSeenAt"]) > ms(in_flight["lastSeenAt"]) + 3000;
      },
      30s));
  const json after = rows().back();
  INFO(in_flight.dump() << "\n" << after.dump());
  // The same segment continues from at least what the lost answer would have acknowledged; the
  // time counted never exceeds the time observed (no interval counted twice).
  CHECK(after["trackingEpoch"] == in_flight["trackingEpoch"]);
  CHECK(after["assignmentEpoch"] == in_flight["assignmentEpoch"]);
  CHECK(after["onSeconds"].get<std::int64_t>() >= in_flight["onSeconds"].get<std::int64_t>());
  check_electric_row(in_flight);
  check_electric_row(after);
  stack.check_no_drops();
}

TEST_CASE("Home Assistant restarting: the tracker reconnects and loops do not multiply",
          "[telemetry][integration]") {
  Stack stack;
  stack.start_agent();
  REQUIRE(stack.agent().wait_for_log("Home Assistant tracker connection ready", 20s));

  for (int i = 0; i < 2; ++i) {
    stack.ha_fake().control("/_fake/core?running=0");
    std::this_thread::sleep_for(1500ms);
    stack.ha_fake().control("/_fake/core?running=1");
    REQUIRE(eventually(
        [&] {
          return stack.agent().count_log("Home Assistant tracker connection ready") >=
                 static_cast<std::size_t>(i + 2);
        },
        30s));
  }
  CHECK(stack.agent().count_log("Home Assistant tracker connection lost") >= 2);

  // One poll chain: with a 1 s poll, 6 s see at most ~7 reads of one entity, not 3× that.
  auto count_reads = [&] {
    int n = 0;
    for (const auto& q : stack.ha_fake().requests()) {
      if (q.value("target", "") == "/core/api/states/switch.device_19") ++n;
    }
    return n;
  };
  const int first = count_reads();
  std::this_thread::sleep_for(6s);
  const int reads = count_reads() - first;
  CHECK(reads >= 3);
  CHECK(reads <= 8);
  stack.check_no_drops();
}

TEST_CASE("Zigbee endpoints: auth, body rules and the error mapping through the real agent",
          "[telemetry][integration][zha]") {
  Stack stack(false);
  stack.start_agent(
      {{"heating_usage_tracking_enabled", false}, {"electric_usage_tracking_enabled", false}});
  int status = 0;

  SECTION("401 without a valid hub token, on all three routes") {
    const std::string unauthorized = R"({"error":"Unauthorized.","code":"unauthorized"})";
    CHECK(post_body(stack.client(), "/_dinodia/zha/permit", "{}", status, false) == unauthorized);
    CHECK(status == 401);
    auto c = stack.client();
    auto r = c.Get("/_dinodia/zha/devices", httplib::Headers{{"Authorization", "Bearer wrong"}});
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->body == unauthorized);
    r = c.Get("/_dinodia/zha/health");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->body == unauthorized);
  }

  SECTION("permit: duration rules reach the service call") {
    const std::vector<std::pair<std::string, int>> cases = {
        {R"({"duration":"30"})", 60}, {R"({"duration":0})", 1},     {R"({"duration":999})", 254},
        {R"({"duration":-5})", 1},    {R"({"duration":42.9})", 42}, {"", 60}};
    for (const auto& [body, expected] : cases) {
      INFO(body);
      stack.ha_fake().control("/_fake/reset");
      CHECK(post_body(stack.client(), "/_dinodia/zha/permit", body, status) ==
            "{\"ok\":true,\"duration\":" + std::to_string(expected) + "}");
      CHECK(status == 200);
      json calls = json::array();
      for (const auto& q : stack.ha_fake().requests()) {
        if (q.value("target", "") == "/core/api/services/zha/permit") calls.push_back(q);
      }
      REQUIRE(calls.size() == 1);
      CHECK(calls[0]["method"] == "POST");
      CHECK(json::parse(calls[0]["body"].get<std::string>()) == json{{"duration", expected}});
    }
  }

  SECTION("permit: invalid JSON and oversized bodies") {
    CHECK(
        post_body(stack.client(), "/_dinodia/zha/permit", "{nope", status) ==
        R"({"error":"Invalid request body.","code":"invalid_json","details":"Invalid JSON body"})");
    CHECK(status == 400);
    const std::string big =
        "{\"duration\":1,\"pad\":\"" + std::string(1024 * 1024 + 10, 'x') + "\"}";
    const std::string reply = post_body(stack.client(), "/_dinodia/zha/permit", big, status);
    if (status != -1) {  // the agent may close before the client finished sending
      CHECK(status == 400);
      CHECK(
          reply ==
          R"({"error":"Invalid request body.","code":"invalid_json","details":"Request body too large"})");
    }
  }

  SECTION("mapping: zha/devices unknown to HA -> 400 zha_not_configured") {
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"error":"Home Assistant Zigbee is not available on this Dinodia Hub.","code":"zha_not_configured"})");
    CHECK(status == 400);
    CHECK(stack.agent().wait_for_log("Dinodia Zigbee device list failed", 5s));
  }

  SECTION("health: registry readable, ZHA not configured") {
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/health", status) ==
        R"({"hubReachable":true,"supervisorTokenPresent":true,"registryReadable":true,"registryErrorCode":null,"zhaDevicesReadable":false,"zhaErrorCode":"zha_not_configured"})");
    CHECK(status == 200);
  }

  SECTION("mapping: Core stopped (Supervisor 502) -> 502 permit_failed") {
    stack.ha_fake().control("/_fake/core?running=0");
    CHECK(
        post_body(stack.client(), "/_dinodia/zha/permit", "{}", status) ==
        R"({"error":"Could not start Zigbee pairing on your Dinodia Hub.","code":"permit_failed"})");
    CHECK(status == 502);
    CHECK(stack.agent().wait_for_log("Dinodia Zigbee permit failed", 5s));
  }
}

TEST_CASE("Zigbee error mapping: credentials and reachability rows",
          "[telemetry][integration][zha]") {
  Stack stack(false);
  int status = 0;
  const json off = {{"heating_usage_tracking_enabled", false},
                    {"electric_usage_tracking_enabled", false}};

  SECTION("no SUPERVISOR_TOKEN: 503 supervisor_token_missing / upstream_auth_failed") {
    stack.start_agent(off, {{"SUPERVISOR_TOKEN", ""}});
    CHECK(
        post_body(stack.client(), "/_dinodia/zha/permit", "{}", status) ==
        R"({"error":"Dinodia Hub supervisor access is not available.","code":"supervisor_token_missing"})");
    CHECK(status == 503);
    // ws_auth_mode supervisor with no token: an empty credential list (ha_ws_auth_missing).
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"error":"Dinodia Hub cannot authenticate with Home Assistant Zigbee right now.","code":"upstream_auth_failed"})");
    CHECK(status == 503);
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/health", status) ==
        R"({"hubReachable":true,"supervisorTokenPresent":false,"registryReadable":false,"registryErrorCode":"upstream_auth_failed","zhaDevicesReadable":false,"zhaErrorCode":"upstream_auth_failed"})");
    CHECK(status == 200);
  }

  SECTION("HA rejects the credential: 503 upstream_auth_failed (ha_ws_auth_invalid)") {
    json o = off;
    o["ws_auth_mode"] = "ha";
    o["ha_access_token"] = "not-the-right-token";
    stack.start_agent(o);
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"error":"Dinodia Hub cannot authenticate with Home Assistant Zigbee right now.","code":"upstream_auth_failed"})");
    CHECK(status == 503);
    CHECK(stack.all_logs().find("not-the-right-token") == std::string::npos);
  }

  SECTION("Supervisor unreachable: 500 unknown_error (native socket error)") {
    stack.start_agent(off, {{"DINODIA_SUPERVISOR_URL",
                             "http://127.0.0.1:" + std::to_string(free_loopback_port())}});
    const std::string unknown =
        R"({"error":"Could not talk to Home Assistant Zigbee right now.","code":"unknown_error"})";
    CHECK(get_body(stack.client(), "/_dinodia/zha/devices", status) == unknown);
    CHECK(status == 500);
    CHECK(post_body(stack.client(), "/_dinodia/zha/permit", "{}", status) == unknown);
    CHECK(status == 500);
  }
}

// ---------------------------------------------------------------------------------------------
// The cases below need fake_ha's control endpoints POST /_fake/set and POST /_fake/event and its
// zha/devices + services/zha/permit behaviour (a patch to the stand-in).

namespace {

json post_fake(Stack& stack, const std::string& path, const json& body) {
  return stack.ha_fake().post(path, body);
}

std::string iso(std::int64_t ms_value) {
  return dinodia::clock::iso8601_from_millis(ms_value);
}

json boiler_state(const std::string& state, double current, double target, std::int64_t at) {
  return {{"entity_id", "climate.boiler"},
          {"state", state},
          {"attributes",
           {{"hvac_mode", state == "unavailable" ? "" : "heat"},
            {"current_temperature", current},
            {"temperature", target}}},
          {"last_changed", iso(at)},
          {"last_updated", iso(at)}};
}

std::optional<json> heating_row(const json& body, const std::string& entity_id) {
  if (!body.contains("heatingUsage")) return std::nullopt;
  for (const auto& row : body["heatingUsage"]["devices"]) {
    if (row.value("entityId", "") == entity_id) return row;
  }
  return std::nullopt;
}

std::optional<json> latest_heating_row(Stack& stack) {
  std::optional<json> last;
  for (const auto& b : stack.token_state_bodies()) {
    if (auto r = heating_row(b, "climate.boiler")) last = r;
  }
  return last;
}

void setup_boiler_registry(Stack& stack, std::int64_t t0) {
  post_fake(
      stack, "/_fake/set",
      {{"label_registry", json::array({{{"label_id", "lbl_boiler"}, {"name", " boiler "}},
                                       {{"label_id", "lbl_radiator"}, {"name", "Radiator"}}})},
       {"entity_registry", json::array({{{"entity_id", "climate.boiler"},
                                         {"labels", json::array({"lbl_boiler"})},
                                         {"disabled_by", nullptr},
                                         {"platform", "demo"}}})},
       {"states", json::array({boiler_state("heat", 20, 18, t0)})}});
}

}  // namespace

TEST_CASE("heating: 0.4.17 accumulation through the real pipeline, odd timestamps included",
          "[telemetry][integration][heating]") {
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;  // an hour ago
  setup_boiler_registry(stack, t0);
  stack.start_agent({{"heating_usage_min_process_interval_ms", 0}},
                    {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}});
  REQUIRE(stack.agent().wait_for_log("Heating usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));

  // Seeded OFF (known: target 18 < current 20) at t0. ON at t0+120 s, still on at t0+300 s.
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 120'000), t0 + 120'000));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20.5, 22, t0 + 300'000), t0 + 300'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["onSeconds"] == 180;
      },
      20s));
  json row = *latest_heating_row(stack);
  INFO(row.dump());
  CHECK(row["label"] == "Boiler");
  CHECK(row["offSeconds"] == 120);
  CHECK(row["unknownSeconds"] == 0);
  CHECK(row["efficiencyOnSeconds"] == 180);
  CHECK(row["efficiencyWeightedOnSeconds"] == 180);  // no bands file: every fraction is 1
  CHECK(row["efficiencyBand"] == "B");
  CHECK(row["lastWasOn"] == true);
  CHECK(row["lastWasKnown"] == true);
  CHECK(row["lastSeenAt"] == iso(t0 + 300'000));

  // Out of order (t0+200 s) is ignored; unavailable at t0+400 s closes 100 s of ON; back at
  // t0+460 s: 60 s unknown. A time_fired an hour in the future is clamped to now.
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 25, 18, t0 + 200'000), t0 + 200'000));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("unavailable", 21, 22, t0 + 400'000), t0 + 400'000));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 21, 22, t0 + 460'000), t0 + 460'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["unknownSeconds"] == 60;
      },
      20s));
  row = *latest_heating_row(stack);
  INFO(row.dump());
  CHECK(row["onSeconds"] == 280);
  CHECK(row["offSeconds"] == 120);
  const std::int64_t future = dinodia::clock::unix_millis() + 3'600'000;
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 21.5, 22, future), future));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && ms((*r)["lastSeenAt"]) > t0 + 460'000;
      },
      20s));
  row = *latest_heating_row(stack);
  CHECK(ms(row["lastSeenAt"]) <= dinodia::clock::unix_millis());
  stack.check_no_drops();
}

TEST_CASE("heating: the reset handshake", "[telemetry][integration][heating]") {
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_boiler_registry(stack, t0);
  stack.start_agent({{"heating_usage_min_process_interval_ms", 0}},
                    {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}});
  REQUIRE(stack.agent().wait_for_log("Heating usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 120'000), t0 + 120'000));
  REQUIRE(eventually([&] { return latest_heating_row(stack).has_value(); }, 20s));

  httplib::Client p("127.0.0.1", stack.platform_port);
  auto r = p.Post("/_fake/heating-reset", json{{"serial", kSerial}}.dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  REQUIRE(stack.agent().wait_for_log("Heating usage state reset applied", 20s));
  // The ack reaches the platform and completes the reset.
  REQUIRE(eventually(
      [&] {
        json t = stack.platform_state()["hub"].value("telemetry", json::object());
        return t.value("heatingUsageResetAck", json::object()).value("applied", false);
      },
      20s));
  // Counting restarts from zero at the next observation.
  const std::int64_t t1 = dinodia::clock::unix_millis() - 60'000;
  post_fake(stack, "/_fake/event", state_changed_event(boiler_state("heat", 20, 18, t1), t1));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t1 + 30'000), t1 + 30'000));
  REQUIRE(eventually(
      [&] {
        auto row = latest_heating_row(stack);
        return row && (*row)["offSeconds"] == 30 && (*row)["onSeconds"] == 0;
      },
      20s));
  // Once the platform stops asking, the ack is no longer sent (docs/compatibility.md#w33).
  REQUIRE(eventually(
      [&] {
        auto bodies = stack.token_state_bodies();
        return !bodies.empty() && !bodies.back().contains("heatingUsageResetAckAt");
      },
      20s));
  stack.check_no_drops();
}

TEST_CASE("electric: an area change mid-segment closes the old segment and opens a new one",
          "[telemetry][integration][electric]") {
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 120'000;
  auto registry = [](const char* area) {
    return json::array({{{"entity_id", "light.lamp"},
                         {"labels", json::array({"light"})},
                         {"area_id", area},
                         {"name", "Lamp"},
                         {"disabled_by", nullptr},
                         {"hidden_by", nullptr}}});
  };
  post_fake(stack, "/_fake/set",
            {{"area_registry", json::array({{{"area_id", "kitchen"}, {"name", "Kitchen"}},
                                            {{"area_id", "hall"}, {"name", "Hall"}}})},
             {"entity_registry", registry("kitchen")},
             {"states", json::array({{{"entity_id", "light.lamp"},
                                      {"state", "on"},
                                      {"attributes", json::object()},
                                      {"last_updated", iso(t0)}}})}});
  stack.start_agent();
  REQUIRE(eventually(
      [&] {
        for (const auto& b : stack.token_state_bodies()) {
          auto r = electric_row(b, "light.lamp");
          if (r && (*r)["areaName"] == "Kitchen" && (*r)["onSeconds"].get<int>() >= 2) return true;
        }
        return false;
      },
      30s));

  // The lamp moves to the hall; Core restarts, so the registry is re-read on reconnect.
  post_fake(stack, "/_fake/set", {{"entity_registry", registry("hall")}});
  stack.ha_fake().control("/_fake/core?running=0");
  stack.ha_fake().control("/_fake/core?running=1");
  json both;
  REQUIRE(eventually(
      [&] {
        stack.check_no_drops();
        for (const auto& b : stack.token_state_bodies()) {
          int retired_kitchen = 0, hall = 0;
          for (const auto& row :
               b.value("electricUsage", json::object()).value("devices", json::array())) {
            if (row["entityId"] != "light.lamp") continue;
            if (row["retired"] == true && row["areaId"] == "kitchen") ++retired_kitchen;
            if (row["retired"] == false && row["areaId"] == "hall") ++hall;
          }
          if (retired_kitchen == 1 && hall == 1) {
            both = b;
            return true;
          }
        }
        return false;
      },
      40s));
  INFO(both.dump());
  json kitchen, hall;
  for (const auto& row : both["electricUsage"]["devices"]) {
    if (row["areaId"] == "kitchen") kitchen = row;
    if (row["areaId"] == "hall") hall = row;
  }
  CHECK(kitchen["trackingEpoch"] != hall["trackingEpoch"]);
  CHECK(kitchen["assignmentEpoch"] != hall["assignmentEpoch"]);
  CHECK(kitchen["onSeconds"].get<int>() >= 2);
  CHECK(hall["areaName"] == "Hall");
  check_electric_row(hall);
  // The kitchen segment ends where the hall one starts: its counters fit into that span and
  // no second is counted in both.
  const std::int64_t kitchen_counted = kitchen["onSeconds"].get<std::int64_t>() +
                                       kitchen["offSeconds"].get<std::int64_t>() +
                                       kitchen["unknownSeconds"].get<std::int64_t>();
  CHECK(kitchen_counted <=
        (ms(hall["assignmentStartedAt"]) - ms(kitchen["assignmentStartedAt"])) / 1000 + 1);
  CHECK(ms(hall["assignmentStartedAt"]) >= ms(kitchen["lastSeenAt"]));
}

TEST_CASE("Zigbee error mapping: Home Assistant failure rows", "[telemetry][integration][zha]") {
  Stack stack(false);
  stack.start_agent(
      {{"heating_usage_tracking_enabled", false}, {"electric_usage_tracking_enabled", false}});
  int status = 0;

  SECTION("devices: the list is cleaned as 0.4.17 cleans it") {
    post_fake(stack, "/_fake/set",
              {{"zha",
                {{"devices", json::array({{{"ieee", " 00:11 "},
                                           {"name", " Plug "},
                                           {"manufacturer", ""},
                                           {"model", 5},
                                           {"available", true}},
                                          {{"ieee", ""}, {"name", "dropped"}},
                                          {{"ieee", "aa:bb"}, {"available", "yes"}}})}}}});
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"devices":[{"ieee":"00:11","name":"Plug","manufacturer":null,"model":null,"available":true},{"ieee":"aa:bb","name":null,"manufacturer":null,"model":null,"available":null}]})");
    CHECK(status == 200);
  }
  SECTION("devices: other HA error -> 502 zha_query_failed") {
    post_fake(
        stack, "/_fake/set",
        {{"zha",
          {{"devices_error", {{"code", "home_assistant_error"}, {"message", "Radio failed"}}}}}});
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"error":"Could not read Zigbee devices from your Dinodia Hub.","code":"zha_query_failed"})");
    CHECK(status == 502);
  }
  SECTION("devices: config entry not loaded -> 400 zha_not_configured") {
    post_fake(
        stack, "/_fake/set",
        {{"zha",
          {{"devices_error",
            {{"code", "home_assistant_error"}, {"message", "ZHA config entry is not loaded"}}}}}});
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/devices", status) ==
        R"({"error":"Home Assistant Zigbee is not available on this Dinodia Hub.","code":"zha_not_configured"})");
    CHECK(status == 400);
  }
  SECTION("devices: no answer within 15 s -> 504 ha_timeout") {
    post_fake(stack, "/_fake/set",
              {{"zha", {{"devices", json::array()}, {"devices_delay_ms", 20000}}}});
    CHECK(get_body(stack.client(), "/_dinodia/zha/devices", status) ==
          R"({"error":"Home Assistant Zigbee did not respond in time.","code":"ha_timeout"})");
    CHECK(status == 504);
  }
  SECTION("devices: HA closes the socket -> 504 ha_timeout (ha_ws_closed)") {
    post_fake(stack, "/_fake/set",
              {{"zha", {{"devices", json::array()}, {"devices_delay_ms", 3000}}}});
    std::thread closer([&] {
      std::this_thread::sleep_for(1000ms);
      stack.ha().Get("/_fake/core?running=0");
    });
    CHECK(get_body(stack.client(), "/_dinodia/zha/devices", status) ==
          R"({"error":"Home Assistant Zigbee did not respond in time.","code":"ha_timeout"})");
    CHECK(status == 504);
    closer.join();
  }
  SECTION("permit: service 404 -> 400 zha_not_configured; 500 -> 502 permit_failed") {
    post_fake(stack, "/_fake/set",
              {{"zha", {{"permit_status", 404}, {"permit_body", "404: Not Found"}}}});
    CHECK(
        post_body(stack.client(), "/_dinodia/zha/permit", "{}", status) ==
        R"({"error":"Home Assistant Zigbee is not available on this Dinodia Hub.","code":"zha_not_configured"})");
    CHECK(status == 400);
    post_fake(stack, "/_fake/set", {{"zha", {{"permit_status", 500}, {"permit_body", "boom"}}}});
    CHECK(
        post_body(stack.client(), "/_dinodia/zha/permit", "{}", status) ==
        R"({"error":"Could not start Zigbee pairing on your Dinodia Hub.","code":"permit_failed"})");
    CHECK(status == 502);
  }
  SECTION("health: a registry of the wrong shape") {
    post_fake(
        stack, "/_fake/set",
        {{"device_registry", {{"unexpected", "object"}}}, {"zha", {{"devices", json::array()}}}});
    CHECK(
        get_body(stack.client(), "/_dinodia/zha/health", status) ==
        R"({"hubReachable":true,"supervisorTokenPresent":true,"registryReadable":false,"registryErrorCode":"registry_unexpected_shape","zhaDevicesReadable":true,"zhaErrorCode":null})");
    CHECK(status == 200);
  }
}

TEST_CASE("upgrade: the legacy heating state file is imported once, totals kept",
          "[telemetry][integration][heating]") {
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_boiler_registry(stack, t0);
  TempDir legacy;
  const json legacy_state = {
      {"schemaVersion", 2},
      {"updatedAt", iso(t0)},
      {"lastResetAt", nullptr},
      {"config",
       {{"efficiencyBandsVersion", 1},
        {"defaultBoilerEfficiencyBand", "B"},
        {"boilerBandsByEntityId", json::object()}}},
      {"entities",
       {{"climate.boiler",
         {{"label", "Boiler"},
          {"onSeconds", 5000},
          {"offSeconds", 7000},
          {"unknownSeconds", 11},
          {"efficiencyWeightedOnSeconds", 5000.0},
          {"efficiencyOnSeconds", 5000},
          {"efficiencyBand", "B"},
          {"efficiencyBandVersion", 1},
          {"lastHeatEndAt", nullptr},
          {"heatRunStartedAt", nullptr},
          {"heatRunStartOutputFraction", nullptr},
          {"lastSeenAt", iso(t0 - 60'000)},
          {"lastWasOn", false},
          {"lastWasKnown", true},
          {"dirty", false},
          {"lastProcessed",
           {{"state", "heat"}, {"hvac_mode", "heat"}, {"current", 20}, {"target", 18}}},
          {"lastProcessedAt", iso(t0 - 60'000)}}}}}};
  write_file(legacy.file("heating_usage_state.json"), legacy_state.dump());
  stack.start_agent({{"heating_usage_min_process_interval_ms", 0},
                     {"heating_usage_persist_path", legacy.file("heating_usage_state.json")}},
                    {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}});
  REQUIRE(stack.agent().wait_for_log("Imported legacy usage state", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));
  // OFF since t0-60 s (imported), ON at t0+60 s: 120 s more OFF on top of the imported 7000.
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 60'000), t0 + 60'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["offSeconds"] == 7120;
      },
      20s));
  json row = *latest_heating_row(stack);
  CHECK(row["onSeconds"] == 5000);
  CHECK(row["unknownSeconds"] == 11);
  CHECK(row["efficiencyOnSeconds"] == 5000);

  // A restart does not import again (the totals would double).
  stack.agent().signal(SIGTERM);
  REQUIRE(stack.agent().wait(10s) == 0);
  stack.drop_agent();
  stack.start_agent({{"heating_usage_min_process_interval_ms", 0},
                     {"heating_usage_persist_path", legacy.file("heating_usage_state.json")}},
                    {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}});
  REQUIRE(stack.agent().wait_for_log("Heating usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));
  CHECK(stack.agent().count_log("Imported legacy usage state") == 0);
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 21, 22, t0 + 120'000), t0 + 120'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["onSeconds"] == 5060;
      },
      20s));
  CHECK((*latest_heating_row(stack))["offSeconds"] == 7120);
  stack.check_no_drops();
}

TEST_CASE("kill -9 right after a state change: the change is not lost",
          "[telemetry][integration][heating][crash]") {
  // The agent must persist an on/off change before it counts as seen: the debug line below is
  // written only after the change is committed, and the agent is killed as soon as it appears
  // (well inside the 1 s in which same-state observations are batched).
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_boiler_registry(stack, t0);
  const json options = {{"heating_usage_min_process_interval_ms", 0},
                        {"electric_usage_tracking_enabled", false},
                        {"log_level", "debug"}};
  const std::map<std::string, std::string> env = {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}};
  // No sync in the first run: a save after an upload could otherwise land between the change
  // and the kill and hide a lost write-through.
  json first_run = options;
  first_run["platform_sync_enabled"] = false;
  stack.start_agent(first_run, env);
  REQUIRE(stack.agent().wait_for_log("Heating usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));

  // Seeded OFF at t0; ON at t0+120 s.
  const std::string recorded = "Usage state change recorded { entityId: 'climate.boiler' }";
  const std::size_t before = stack.agent().count_log(recorded);
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 120'000), t0 + 120'000));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (stack.agent().count_log(recorded) == before &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ::kill(stack.agent().pid(), SIGKILL);
  INFO(stack.agent().log());
  REQUIRE(stack.agent().count_log(recorded) > before);
  stack.agent().wait(5s);
  stack.drop_agent();
  // The stand-in keeps the state the event carried, and a start seeds from Home Assistant's
  // states: left at t0+120 s, the restart would rediscover the change and hide a lost write.
  // So while the agent is down the boiler reports again at t0+300 s, still heating.
  post_fake(stack, "/_fake/set",
            {{"states", json::array({boiler_state("heat", 20.5, 22, t0 + 300'000)})}});

  // Restart; still ON at t0+300 s: 120 s OFF then 180 s ON. Had the change been lost, the
  // agent would count 300 s OFF.
  stack.start_agent(options, env);
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20.5, 22, t0 + 300'000), t0 + 300'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["lastSeenAt"] == iso(t0 + 300'000);
      },
      20s));
  const json row = *latest_heating_row(stack);
  INFO(row.dump());
  CHECK(row["offSeconds"] == 120);
  CHECK(row["onSeconds"] == 180);
  CHECK(row["efficiencyOnSeconds"] == 180);
  CHECK(row["lastWasOn"] == true);
  stack.check_no_drops();
}

TEST_CASE("throttled on -> off -> on 50 ms apart: each interval is counted by its timestamps",
          "[telemetry][integration][heating]") {
  // Default heating_usage_min_process_interval_ms (1000): the second and third events arrive
  // inside the interval. Their time_fired values are minutes apart, as after HA replays a
  // burst; the throttle may delay them but must not merge them.
  Stack stack;
  const std::int64_t t0 = dinodia::clock::unix_millis() - 3'600'000;
  setup_boiler_registry(stack, t0);
  stack.start_agent({{"electric_usage_tracking_enabled", false}},
                    {{"DINODIA_TELEMETRY_POLL_SECONDS", "3600"}});
  REQUIRE(stack.agent().wait_for_log("Heating usage seeded initial entity states", 20s));
  REQUIRE(stack.agent().wait_for_log("Usage tracking subscribed to state_changed", 20s));

  // Seeded OFF at t0. ON at +120 s, OFF at +180 s, ON at +300 s, then still ON at +400 s.
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 120'000), t0 + 120'000));
  std::this_thread::sleep_for(50ms);
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 23, 22, t0 + 180'000), t0 + 180'000));
  std::this_thread::sleep_for(50ms);
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20, 22, t0 + 300'000), t0 + 300'000));
  std::this_thread::sleep_for(50ms);
  post_fake(stack, "/_fake/event",
            state_changed_event(boiler_state("heat", 20.5, 22, t0 + 400'000), t0 + 400'000));
  REQUIRE(eventually(
      [&] {
        auto r = latest_heating_row(stack);
        return r && (*r)["lastSeenAt"] == iso(t0 + 400'000);
      },
      20s));
  const json row = *latest_heating_row(stack);
  INFO(row.dump());
  CHECK(row["offSeconds"] == 120 + 120);
  CHECK(row["onSeconds"] == 60 + 100);
  CHECK(row["efficiencyOnSeconds"] == 160);
  CHECK(row["unknownSeconds"] == 0);
  stack.check_no_drops();
}
