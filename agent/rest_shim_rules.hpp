#pragma once
// The rules of the REST shims (docs/lan-bridge.md#rest-shims): the Home Assistant REST paths the
// iOS app and the kiosk call although Home Assistant has no such route, translated to Home
// Assistant's WebSocket commands. What each answer looks like and which status an error gets;
// no sockets here (agent/rest_shims.cpp does the calls), so each rule is unit-tested alone.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ha_bridge/local_routes.hpp"
#include "ha_client/ws_commands_once.hpp"

namespace dinodia::agent {

// The HTTP status for a failed command result, as Home Assistant's REST API answers the same
// failure (its `Unauthorized` is 401, a schema error 400): not_found and unknown_command 404
// (also "Unknown device", which Core reports as a home_assistant_error, or unknown_error before
// 2024), unauthorized 401, timeout 504, everything else 400.
int ha_error_status(std::string_view code, std::string_view message);

// A failed command result relayed: that status, body {"message": ..., "code": ...} in the
// shape of Home Assistant's own REST errors.
ha_bridge::LocalResponse ha_error_response(const ha_client::WsResult& failed);

// Home Assistant could not be asked (down, the Supervisor refused, no credential, timeout):
// 502 {"error":"Upstream error."}, what the relay answers when Home Assistant cannot be reached.
ha_bridge::LocalResponse upstream_error_response();

// 200 with a JSON body.
ha_bridge::LocalResponse json_response(std::string body);

// POST .../entity_registry/remove {"entity_id"} and .../device_registry/remove {"device_id"}:
// the WebSocket command `type` with the body's `key` copied (when present; Home Assistant's
// schema judges its value and a missing key). nullopt when the body is not a JSON object, which
// bad_body_response answers.
std::optional<nlohmann::json> remove_command(std::string_view body, const char* type,
                                             const char* key);
// 400 {"message":"Invalid JSON specified.","code":"invalid_format"}, or 413 for a body over the
// route's limit (the connection then closes: the rest was never read).
ha_bridge::LocalResponse bad_body_response(bool too_large);
// 200 {"ok":true}: a remove that Home Assistant carried out (the shape of dinodia-os haCompat,
// which the apps never read).
ha_bridge::LocalResponse removed_response();

// The device's config entries from a config/device_registry/list result, for Home Assistant
// before config/device_registry/remove existed; nullopt when no device has that id.
std::optional<std::vector<std::string>> device_config_entries(const nlohmann::json& devices,
                                                              const nlohmann::json& device_id);

// The automation entities of a get_states result, in its order.
std::vector<std::string> automation_entity_ids(const nlohmann::json& states);

// GET /api/config/automation: for each automation entity, the `config` Home Assistant's
// automation/config command answered, with "entity_id" added. An automation removed meanwhile
// (not_found) is left out; any other failure is the answer (its error response).
struct AutomationList {
  std::optional<ha_client::WsResult> failed;
  nlohmann::json list = nlohmann::json::array();
};
AutomationList automation_list(const std::vector<std::string>& entity_ids,
                               const std::vector<ha_client::WsResult>& results);

}  // namespace dinodia::agent
