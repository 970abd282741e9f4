// The REST shims end to end (docs/lan-bridge.md#rest-shims): the real agent binary in front of
// fake_ha, whose WebSocket side answers the registry and automation commands as Core does. Each
// path the iOS app calls although Home Assistant has no such route is checked for the exact
// answer the app decodes (Dinodia/HAService.swift, Dinodia/AutomationsService.swift), and for
// its errors: Home Assistant down, an unknown id, a non-admin refusal. A wrong or missing hub
// token and a path off the allow-list are refused before anything reaches Home Assistant; the
// paths Home Assistant does have stay relayed untouched.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kHubToken = "shim-hub-token-4d71";
const std::string kSupervisorToken = "supervisor-secret-shims-a2c9";
const std::string kAuth = "Bearer " + kHubToken;

class Stack {
 public:
  explicit Stack(json extra_options = json::object())
      : fake_(dir_, kSupervisorToken),
        agent_({dir_.path(), "", fake_.url(), kSupervisorToken, {}}) {
    json options = lan_agent_options(kHubToken);
    options["port"] = free_loopback_port();
    // No kiosk relief: its own WebSocket to the fake would count among the shims' connections.
    options["kiosk_relief"] = false;
    options.update(extra_options);
    port = agent_.start(options);
  }

  ~Stack() { check_no_secrets(agent_.all_logs(), {kHubToken, kSupervisorToken}); }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2);
    c.set_read_timeout(20);
    return c;
  }
  httplib::Result get(const std::string& path, const std::string& auth = kAuth) const {
    auto c = client();
    return auth.empty() ? c.Get(path) : c.Get(path, {{"Authorization", auth}});
  }
  httplib::Result post(const std::string& path, const std::string& body,
                       const std::string& auth = kAuth) const {
    auto c = client();
    httplib::Headers headers;
    if (!auth.empty()) headers.emplace("Authorization", auth);
    return c.Post(path, headers, body, "application/json");
  }

  const FakeHaProcess& ha() const { return fake_; }
  void set(const json& values) const { fake_.post("/_fake/set", values); }
  // The WebSocket commands the fake received after auth whose type starts with `prefix` (asking
  // opens a connection of its own).
  std::vector<json> ws_commands(const std::string& prefix) const {
    std::vector<json> out;
    const json received = fake_.ws_command({{"type", "fake/received"}});
    for (const auto& m : received["result"]) {
      if (m.is_object() && m.value("type", "").rfind(prefix, 0) == 0) out.push_back(m);
    }
    return out;
  }
  bool agent_log_has(const std::string& needle) const {
    return agent_.all_logs().find(needle) != std::string::npos;
  }

  int port = 0;

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  AgentProcess agent_;
};

// Core's label registry entries (config/label_registry/list, newest fields).
json labels() {
  return json::array({{{"color", "indigo"},
                       {"created_at", 1700000000.5},
                       {"description", nullptr},
                       {"icon", "mdi:lightbulb"},
                       {"label_id", "light"},
                       {"modified_at", 1700000100.25},
                       {"name", "Light"}},
                      {{"color", nullptr},
                       {"created_at", 1700000200.0},
                       {"description", "Blinds and shutters"},
                       {"icon", nullptr},
                       {"label_id", "blind"},
                       {"modified_at", 1700000200.0},
                       {"name", "Blind"}}});
}

json device(const std::string& id, std::vector<std::string> config_entries) {
  return {{"area_id", "kitchen"},
          {"config_entries", config_entries},
          {"config_entries_subentries", json::object()},
          {"configuration_url", nullptr},
          {"connections", json::array()},
          {"created_at", 1700000000.0},
          {"disabled_by", nullptr},
          {"entry_type", nullptr},
          {"hw_version", nullptr},
          {"id", id},
          {"identifiers", json::array({json::array({"demo", id})})},
          {"labels", json::array()},
          {"manufacturer", "Acme"},
          {"model", "Plug"},
          {"model_id", nullptr},
          {"modified_at", 1700000000.0},
          {"name", "Plug " + id},
          {"name_by_user", nullptr},
          {"primary_config_entry", config_entries.empty() ? json() : json(config_entries[0])},
          {"serial_number", nullptr},
          {"sw_version", "1.0"},
          {"via_device_id", nullptr}};
}

json entity(const std::string& entity_id, const std::string& device_id) {
  return {{"area_id", nullptr},
          {"categories", json::object()},
          {"config_entry_id", "cfg1"},
          {"config_subentry_id", nullptr},
          {"created_at", 1700000000.0},
          {"device_id", device_id},
          {"disabled_by", nullptr},
          {"entity_category", nullptr},
          {"entity_id", entity_id},
          {"has_entity_name", true},
          {"hidden_by", nullptr},
          {"icon", nullptr},
          {"id", "reg-" + entity_id},
          {"labels", json::array()},
          {"modified_at", 1700000000.0},
          {"name", nullptr},
          {"options", json::object()},
          {"original_name", nullptr},
          {"platform", "demo"},
          {"translation_key", nullptr},
          {"unique_id", "uid-" + entity_id}};
}

// What HAService.listEntityRegistryIds / listDeviceRegistryIds / listAutomationEntityIds keep:
// the string `key` of each element.
std::vector<std::string> ids_of(const json& list, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& e : list) {
    if (e.contains(key) && e[key].is_string()) out.push_back(e[key]);
  }
  return out;
}

}  // namespace

TEST_CASE("REST shims: the registry lists in the shapes the iOS app decodes",
          "[integration][rest_shims]") {
  Stack s;
  s.set({{"label_registry", labels()},
         {"device_registry", json::array({device("dev-a", {"cfg1"})})},
         {"entity_registry", json::array({entity("light.kitchen", "dev-a")})}});

  SECTION("GET /api/config/label_registry/list: 200 and Core's label array") {
    // HAService.listLabels requires exactly 200 and decodes [HaLabel] {label_id, name}.
    auto r = s.get("/api/config/label_registry/list");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    const json body = json::parse(r->body);
    CHECK(body == labels());
    for (const auto& label : body) {
      CHECK(label["label_id"].is_string());
      CHECK(label["name"].is_string());
    }
    CHECK(s.ws_commands("config/label_registry/list").size() == 1);
    // Translated, not relayed: Home Assistant's REST side never saw the path.
    CHECK(s.ha().requests_to("/core/api/config/label_registry").empty());
  }
  SECTION("GET /api/config/device_registry/list and entity_registry/list") {
    auto devices = s.get("/api/config/device_registry/list");
    REQUIRE(devices);
    CHECK(devices->status == 200);
    CHECK(json::parse(devices->body) == json::array({device("dev-a", {"cfg1"})}));
    CHECK(ids_of(json::parse(devices->body), "id") == std::vector<std::string>{"dev-a"});
    auto entities = s.get("/api/config/entity_registry/list");
    REQUIRE(entities);
    CHECK(entities->status == 200);
    CHECK(json::parse(entities->body) == json::array({entity("light.kitchen", "dev-a")}));
    CHECK(ids_of(json::parse(entities->body), "entity_id") ==
          std::vector<std::string>{"light.kitchen"});
    CHECK(s.ha().requests_to("/core/api/config/").empty());
  }
  SECTION("matched on the path the relay would forward: slashes collapsed, query ignored") {
    auto r = s.get("/api//config/label_registry/list?x=1");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(json::parse(r->body) == labels());
  }
  SECTION("one keep-alive connection serves a shim and a relayed request in turn") {
    auto c = s.client();
    c.set_keep_alive(true);
    const httplib::Headers auth = {{"Authorization", kAuth}};
    for (int i = 0; i < 2; ++i) {
      auto a = c.Get("/api/config/label_registry/list", auth);
      REQUIRE(a);
      CHECK(a->status == 200);
      auto b = c.Get("/api/", auth);
      REQUIRE(b);
      CHECK(b->status == 200);
    }
  }
}

TEST_CASE("REST shims: removals, unknown ids and a non-admin refusal",
          "[integration][rest_shims]") {
  Stack s;
  s.set({{"device_registry",
          json::array({device("dev-a", {"cfg1"}), device("dev-b", {"cfg1", "cfg2"})})},
         {"entity_registry",
          json::array({entity("light.kitchen", "dev-a"), entity("switch.plug", "dev-b")})}});

  SECTION("POST /api/config/entity_registry/remove: 200 {ok:true}, then the entry is gone") {
    auto r = s.post("/api/config/entity_registry/remove", R"({"entity_id":"light.kitchen"})");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == R"({"ok":true})");
    const auto sent = s.ws_commands("config/entity_registry/remove");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0]["entity_id"] == "light.kitchen");
    auto list = s.get("/api/config/entity_registry/list");
    REQUIRE(list);
    CHECK(ids_of(json::parse(list->body), "entity_id") == std::vector<std::string>{"switch.plug"});
  }
  SECTION("unknown entity: Core's not_found as 404 with a JSON body") {
    auto r = s.post("/api/config/entity_registry/remove", R"({"entity_id":"light.nowhere"})");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body == R"({"message":"Entity not found","code":"not_found"})");
    CHECK(r->get_header_value("Content-Type") == "application/json");
  }
  SECTION("bodies Core's schema refuses: 400 invalid_format") {
    auto r = s.post("/api/config/entity_registry/remove", "{nope");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(r->body == R"({"message":"Invalid JSON specified.","code":"invalid_format"})");
    r = s.post("/api/config/entity_registry/remove", "{}");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(
        r->body ==
        R"({"message":"required key not provided @ data['entity_id']. Got None","code":"invalid_format"})");
  }
  SECTION("POST /api/config/device_registry/remove: config/device_registry/remove") {
    auto r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-a"})");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == R"({"ok":true})");
    auto list = s.get("/api/config/device_registry/list");
    REQUIRE(list);
    CHECK(ids_of(json::parse(list->body), "id") == std::vector<std::string>{"dev-b"});
    // Core reports an unknown device as a HomeAssistantError; relayed as 404.
    r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-a"})");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body == R"({"message":"Unknown device","code":"home_assistant_error"})");
  }
  SECTION("Core before config/device_registry/remove: each config entry is removed") {
    s.set({{"device_remove_command", false}});
    auto r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-b"})");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == R"({"ok":true})");
    const auto sent = s.ws_commands("config/device_registry/remove_config_entry");
    REQUIRE(sent.size() == 2);
    CHECK(sent[0]["config_entry_id"] == "cfg1");
    CHECK(sent[1]["config_entry_id"] == "cfg2");
    CHECK(sent[1]["device_id"] == "dev-b");
    auto list = s.get("/api/config/device_registry/list");
    REQUIRE(list);
    CHECK(ids_of(json::parse(list->body), "id") == std::vector<std::string>{"dev-a"});
    r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-zzz"})");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body == R"({"message":"Unknown device","code":"not_found"})");
  }
  SECTION("a user who is not an administrator: Core's unauthorized as 401") {
    s.set({{"ws_admin", false}});
    auto r = s.post("/api/config/entity_registry/remove", R"({"entity_id":"light.kitchen"})");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->body == R"({"message":"Unauthorized","code":"unauthorized"})");
    r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-a"})");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->body == R"({"message":"Unauthorized","code":"unauthorized"})");
    // Reading needs no administrator, and nothing was removed.
    auto list = s.get("/api/config/entity_registry/list");
    REQUIRE(list);
    CHECK(list->status == 200);
    CHECK(json::parse(list->body).size() == 2);
  }
}

TEST_CASE("REST shims: GET /api/config/automation lists every automation's config",
          "[integration][rest_shims]") {
  Stack s;

  SECTION("no automation: an empty array") {
    auto r = s.get("/api/config/automation");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "[]");
  }
  SECTION("automations saved over REST (relayed) and one from YAML") {
    const json morning = {
        {"id", "dinodia_1"},
        {"alias", "Morning lights"},
        {"description", ""},
        {"mode", "single"},
        {"trigger", json::array({{{"platform", "time"}, {"at", "07:00:00"}}})},
        {"action", json::array({{{"service", "light.turn_on"},
                                 {"target", {{"entity_id", "light.kitchen"}}}}})}};
    const json night = {{"id", "dinodia_2"},
                        {"alias", "Night"},
                        {"mode", "restart"},
                        {"triggers", json::array()},
                        {"actions", json::array()}};
    // POST /api/config/automation/config/<id> is Home Assistant's own: relayed untouched.
    for (const auto& config : {morning, night}) {
      auto r =
          s.post("/api/config/automation/config/" + config["id"].get<std::string>(), config.dump());
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->body == R"({"result":"ok"})");
    }
    CHECK(s.ha().requests_to("/core/api/config/automation/config/").size() == 2);
    s.set({{"states", json::array({{{"entity_id", "automation.yaml_one"},
                                    {"state", "off"},
                                    {"attributes", {{"friendly_name", "Yaml one"}}}}})}});

    auto r = s.get("/api/config/automation");
    REQUIRE(r);
    CHECK(r->status == 200);
    json expected = json::array();
    expected.push_back(morning);
    expected.back()["entity_id"] = "automation.morning_lights";
    expected.push_back(night);
    expected.back()["entity_id"] = "automation.night";
    expected.push_back({{"alias", "Yaml one"},
                        {"triggers", json::array()},
                        {"actions", json::array()},
                        {"entity_id", "automation.yaml_one"}});
    CHECK(json::parse(r->body) == expected);
    // What HAService.listAutomationEntityIds keeps; AutomationsService.findMatchingConfig
    // matches on id, alias or entity_id.
    CHECK(ids_of(json::parse(r->body), "entity_id") ==
          std::vector<std::string>{"automation.morning_lights", "automation.night",
                                   "automation.yaml_one"});
    CHECK(s.ws_commands("automation/config").size() == 3);
    // Not relayed: Core has no such REST route.
    for (const auto& q : s.ha().requests_to("/core/api/config/automation")) {
      CHECK(q["target"] != "/core/api/config/automation");
    }
  }
}

TEST_CASE("REST shims: Home Assistant down", "[integration][rest_shims]") {
  Stack s;
  // Core stopped: the Supervisor answers REST with 502 and refuses WebSocket upgrades.
  s.ha().control("/_fake/core?running=0");
  s.ha().control("/_fake/fault?mode=ws_502&count=-1");
  for (const auto& path : {"/api/config/label_registry/list", "/api/config/device_registry/list",
                           "/api/config/entity_registry/list", "/api/config/automation"}) {
    INFO(path);
    auto r = s.get(path);
    REQUIRE(r);
    CHECK(r->status == 502);
    CHECK(r->body == R"({"error":"Upstream error."})");
  }
  auto r = s.post("/api/config/entity_registry/remove", R"({"entity_id":"light.kitchen"})");
  REQUIRE(r);
  CHECK(r->status == 502);
  CHECK(r->body == R"({"error":"Upstream error."})");
  CHECK(s.agent_log_has("REST shim could not reach Home Assistant"));
}

TEST_CASE("REST shims: the relay's access decision comes first", "[integration][rest_shims]") {
  SECTION("a wrong or missing hub token: 401, and nothing reaches Home Assistant") {
    Stack s;
    const json before = s.ha().stats();
    for (const std::string auth : {"", "Bearer wrong-token"}) {
      auto r = s.get("/api/config/label_registry/list", auth);
      REQUIRE(r);
      CHECK(r->status == 401);
      CHECK(r->body == R"({"error":"Unauthorized."})");
      r = s.post("/api/config/entity_registry/remove", R"({"entity_id":"light.kitchen"})", auth);
      REQUIRE(r);
      CHECK(r->status == 401);
      CHECK(r->body == R"({"error":"Unauthorized."})");
    }
    const json after = s.ha().stats();
    CHECK(after["ws_connections_total"] == before["ws_connections_total"]);
    CHECK(s.ha().requests_to("/core/api/config").empty());
  }
  SECTION("a path off the allow-list: 403 naming it, and nothing reaches Home Assistant") {
    Stack s(json{{"allowed_path_regex", json::array({"^/api/?$", "^/api/states($|/.*)"})}});
    const json before = s.ha().stats();
    auto r = s.get("/api/config/label_registry/list");
    REQUIRE(r);
    CHECK(r->status == 403);
    CHECK(r->body == R"({"error":"Path not allowed.","path":"/api/config/label_registry/list"})");
    r = s.post("/api/config/device_registry/remove", R"({"device_id":"dev-a"})");
    REQUIRE(r);
    CHECK(r->status == 403);
    CHECK(s.ha().stats()["ws_connections_total"] == before["ws_connections_total"]);
    CHECK(s.ha().requests_to("/core/api/config").empty());
  }
}

TEST_CASE("REST shims: paths Home Assistant has stay relayed untouched",
          "[integration][rest_shims]") {
  Stack s;
  SECTION("POST /api/config/core/check_config") {
    auto r = s.post("/api/config/core/check_config", "");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == R"({"result":"valid","errors":null,"warnings":null})");
    const auto seen = s.ha().requests_to("/core/api/config/core/check_config");
    REQUIRE(seen.size() == 1);
    CHECK(seen[0]["method"] == "POST");
  }
  SECTION("GET /api/config/config_entries/entry") {
    auto r = s.get("/api/config/config_entries/entry");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(json::parse(r->body)[0]["entry_id"] == "cfg1");
    CHECK(s.ha().requests_to("/core/api/config/config_entries/entry").size() == 1);
  }
  SECTION("another method on a shim's path, and the path under it, go to Home Assistant") {
    auto r = s.post("/api/config/label_registry/list", "{}");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body == "404: Not Found");
    r = s.get("/api/config/automation/config/nothing");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body == R"({"message":"Resource not found"})");
    CHECK(s.ha().requests_to("/core/api/config/label_registry/list").size() == 1);
    CHECK(s.ha().requests_to("/core/api/config/automation/config/nothing").size() == 1);
    CHECK(s.ws_commands("config/label_registry/list").empty());
  }
}
