#include "agent/rest_shim_rules.hpp"

#include <utility>

namespace dinodia::agent {

using json = nlohmann::json;
using ha_bridge::LocalResponse;

namespace {

LocalResponse response(int status, std::string body) {
  LocalResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

int ha_error_status(std::string_view code, std::string_view message) {
  if (code == "not_found" || code == "unknown_command" || message == "Unknown device") return 404;
  if (code == "unauthorized") return 401;
  if (code == "timeout") return 504;
  return 400;
}

LocalResponse ha_error_response(const ha_client::WsResult& failed) {
  const std::string message = failed.message.empty() ? "Unknown error" : failed.message;
  const std::string code = failed.code.empty() ? "unknown_error" : failed.code;
  return response(ha_error_status(code, message),
                  nlohmann::ordered_json{{"message", message}, {"code", code}}.dump());
}

LocalResponse upstream_error_response() {
  return response(502, R"({"error":"Upstream error."})");
}

LocalResponse json_response(std::string body) {
  return response(200, std::move(body));
}

std::optional<json> remove_command(std::string_view body, const char* type, const char* key) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  json command = {{"type", type}};
  if (const auto it = parsed.find(key); it != parsed.end()) command[key] = *it;
  return command;
}

LocalResponse bad_body_response(bool too_large) {
  if (too_large) {
    LocalResponse r = response(413, R"({"error":"Request body too large."})");
    r.close_connection = true;
    return r;
  }
  return response(400, R"({"message":"Invalid JSON specified.","code":"invalid_format"})");
}

LocalResponse removed_response() {
  return response(200, R"({"ok":true})");
}

std::optional<std::vector<std::string>> device_config_entries(const json& devices,
                                                              const json& device_id) {
  if (!devices.is_array() || !device_id.is_string()) return std::nullopt;
  for (const auto& device : devices) {
    if (!device.is_object() || device.value("id", json()) != device_id) continue;
    std::vector<std::string> entries;
    const json listed = device.value("config_entries", json::array());
    for (const auto& entry : listed.is_array() ? listed : json::array()) {
      if (entry.is_string()) entries.push_back(entry.get<std::string>());
    }
    return entries;
  }
  return std::nullopt;
}

std::vector<std::string> automation_entity_ids(const json& states) {
  std::vector<std::string> ids;
  if (!states.is_array()) return ids;
  for (const auto& state : states) {
    if (!state.is_object()) continue;
    const json id = state.value("entity_id", json());
    if (id.is_string() && id.get<std::string>().starts_with("automation.")) {
      ids.push_back(id.get<std::string>());
    }
  }
  return ids;
}

AutomationList automation_list(const std::vector<std::string>& entity_ids,
                               const std::vector<ha_client::WsResult>& results) {
  AutomationList out;
  for (std::size_t i = 0; i < entity_ids.size() && i < results.size(); ++i) {
    const ha_client::WsResult& r = results[i];
    if (!r.success) {
      if (r.code == "not_found") continue;
      out.failed = r;
      out.list = json::array();
      return out;
    }
    json item =
        r.result.is_object() && r.result.contains("config") && r.result["config"].is_object()
            ? r.result["config"]
            : json::object();
    item["entity_id"] = entity_ids[i];
    out.list.push_back(std::move(item));
  }
  return out;
}

}  // namespace dinodia::agent
