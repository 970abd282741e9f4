// agent/rest_shim_rules: the REST shims' statuses, bodies and list assembly
// (docs/lan-bridge.md#rest-shims), without sockets. End to end: tests/integration/rest_shims_test.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/rest_shim_rules.hpp"

using namespace dinodia::agent;
using dinodia::ha_client::WsResult;
using nlohmann::json;

namespace {

WsResult failure(std::string code, std::string message) {
  WsResult r;
  r.code = std::move(code);
  r.message = std::move(message);
  return r;
}
WsResult success(json result) {
  WsResult r;
  r.success = true;
  r.result = std::move(result);
  return r;
}

}  // namespace

TEST_CASE("a failed command's status follows Home Assistant's REST conventions", "[rest_shims]") {
  CHECK(ha_error_status("not_found", "Entity not found") == 404);
  CHECK(ha_error_status("unknown_command", "Unknown command.") == 404);
  CHECK(ha_error_status("home_assistant_error", "Unknown device") == 404);
  CHECK(ha_error_status("unknown_error", "Unknown device") == 404);  // Core before 2024
  CHECK(ha_error_status("unauthorized", "Unauthorized") == 401);
  CHECK(ha_error_status("timeout", "Timeout") == 504);
  CHECK(ha_error_status("invalid_format", "required key not provided") == 400);
  CHECK(ha_error_status("home_assistant_error", "Config entry does not support device removal") ==
        400);
  CHECK(ha_error_status("", "") == 400);
}

TEST_CASE("a failed command is relayed as {message, code}", "[rest_shims]") {
  auto r = ha_error_response(failure("not_found", "Entity not found"));
  CHECK(r.status == 404);
  CHECK(r.content_type == "application/json");
  CHECK(r.body == R"({"message":"Entity not found","code":"not_found"})");
  r = ha_error_response(failure("", ""));
  CHECK(r.status == 400);
  CHECK(r.body == R"({"message":"Unknown error","code":"unknown_error"})");
  r = ha_error_response(failure("unauthorized", "Unauthorized"));
  CHECK(r.status == 401);
  CHECK(r.body == R"({"message":"Unauthorized","code":"unauthorized"})");
  CHECK(upstream_error_response().status == 502);
  CHECK(upstream_error_response().body == R"({"error":"Upstream error."})");
}

TEST_CASE("remove bodies become the WebSocket command", "[rest_shims]") {
  auto c = remove_command(R"({"entity_id":"light.kitchen","extra":1})",
                          "config/entity_registry/remove", "entity_id");
  REQUIRE(c);
  CHECK(*c == json{{"type", "config/entity_registry/remove"}, {"entity_id", "light.kitchen"}});
  // A missing key or a value of another type is left to Core's schema.
  c = remove_command("{}", "config/device_registry/remove", "device_id");
  REQUIRE(c);
  CHECK(*c == json{{"type", "config/device_registry/remove"}});
  c = remove_command(R"({"device_id":7})", "config/device_registry/remove", "device_id");
  REQUIRE(c);
  CHECK((*c)["device_id"] == 7);
  CHECK_FALSE(remove_command("", "t", "k"));
  CHECK_FALSE(remove_command("{nope", "t", "k"));
  CHECK_FALSE(remove_command("[]", "t", "k"));
  CHECK(bad_body_response(false).status == 400);
  CHECK(bad_body_response(false).body ==
        R"({"message":"Invalid JSON specified.","code":"invalid_format"})");
  CHECK(bad_body_response(true).status == 413);
  CHECK(bad_body_response(true).close_connection);
  CHECK(removed_response().status == 200);
  CHECK(removed_response().body == R"({"ok":true})");
}

TEST_CASE("a device's config entries from the device list", "[rest_shims]") {
  const json devices = json::array({{{"id", "a"}, {"config_entries", json::array({"c1", "c2"})}},
                                    {{"id", "b"}, {"config_entries", json::array()}},
                                    {{"id", "c"}}});
  CHECK(device_config_entries(devices, "a") == std::vector<std::string>{"c1", "c2"});
  CHECK(device_config_entries(devices, "b") == std::vector<std::string>{});
  CHECK(device_config_entries(devices, "c") == std::vector<std::string>{});
  CHECK_FALSE(device_config_entries(devices, "z"));
  CHECK_FALSE(device_config_entries(devices, 7));
  CHECK_FALSE(device_config_entries(json::object(), "a"));
}

TEST_CASE("the automation list: configs with their entity_id", "[rest_shims]") {
  const json states = json::array({{{"entity_id", "light.a"}},
                                   {{"entity_id", "automation.one"}},
                                   {{"entity_id", 5}},
                                   {{"entity_id", "automation.two"}},
                                   {{"entity_id", "automation.gone"}}});
  const auto ids = automation_entity_ids(states);
  REQUIRE(ids == std::vector<std::string>{"automation.one", "automation.two", "automation.gone"});
  CHECK(automation_entity_ids(json::object()).empty());

  SECTION("not_found (removed meanwhile) is left out; a config that is not an object is empty") {
    const auto list = automation_list(
        ids, {success({{"config", {{"id", "1"}, {"alias", "One"}}}}),
              success({{"config", nullptr}}), failure("not_found", "Entity not found")});
    CHECK_FALSE(list.failed);
    CHECK(list.list ==
          json::array({{{"id", "1"}, {"alias", "One"}, {"entity_id", "automation.one"}},
                       {{"entity_id", "automation.two"}}}));
  }
  SECTION("any other failure is the answer") {
    const auto list = automation_list(
        ids, {success({{"config", json::object()}}), failure("unauthorized", "Unauthorized"),
              success({{"config", json::object()}})});
    REQUIRE(list.failed);
    CHECK(list.failed->code == "unauthorized");
    CHECK(list.list.empty());
  }
}
