#include "telemetry/zha.hpp"

#include <cmath>

#include "common/text.hpp"

namespace dinodia::telemetry {

using Json = nlohmann::json;
// Reply bodies keep 0.4.17's key order (they match it byte for byte, docs/compatibility.md#zigbee);
// nlohmann::json would sort the keys.
using Ordered = nlohmann::ordered_json;

std::string ZhaError::body() const {
  return Ordered{{"error", message}, {"code", code}}.dump();
}

ZhaError classify_zha_error(std::string_view error) {
  const std::string m = text::lower(error);
  auto has = [&](std::string_view s) { return m.find(s) != std::string::npos; };
  const char* kUnknown = "Could not talk to Home Assistant Zigbee right now.";
  const char* kNotConfigured = "Home Assistant Zigbee is not available on this Dinodia Hub.";
  if (m.empty()) return {500, "unknown_error", kUnknown};
  if (has("supervisor_token_missing"))
    return {503, "supervisor_token_missing", "Dinodia Hub supervisor access is not available."};
  if (has("ha_ws_auth_missing") || has("ha_ws_auth_invalid"))
    return {503, "upstream_auth_failed",
            "Dinodia Hub cannot authenticate with Home Assistant Zigbee right now."};
  if (has("ha_ws_timeout") || has("ha_ws_closed"))
    return {504, "ha_timeout", "Home Assistant Zigbee did not respond in time."};
  if (has("ha_service_error:404") || has("ha_ws_result_error:unknown command") || has("not found"))
    return {400, "zha_not_configured", kNotConfigured};
  if (has("config entry") || (has("zha") && has("not") && has("loaded")))
    return {400, "zha_not_configured", kNotConfigured};
  if (has("ha_service_error"))
    return {502, "permit_failed", "Could not start Zigbee pairing on your Dinodia Hub."};
  if (has("ha_ws_result_error"))
    return {502, "zha_query_failed", "Could not read Zigbee devices from your Dinodia Hub."};
  return {500, "unknown_error", kUnknown};
}

int permit_duration(const Json& body) {
  if (!body.is_object()) return 60;
  auto it = body.find("duration");
  if (it == body.end() || !it->is_number()) return 60;
  const double d = it->get<double>();
  if (!std::isfinite(d)) return 60;
  const double f = std::floor(d);
  if (f < 1) return 1;
  if (f > 254) return 254;
  return static_cast<int>(f);
}

PermitBody parse_permit_body(std::string_view body, bool too_large) {
  auto invalid = [](const char* details) {
    return Ordered{
        {"error", "Invalid request body."}, {"code", "invalid_json"}, {"details", details}}
        .dump();
  };
  if (too_large) return {std::nullopt, invalid("Request body too large")};
  if (body.empty()) return {Json::object(), {}};
  auto parsed = Json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return {std::nullopt, invalid("Invalid JSON body")};
  return {std::move(parsed), {}};
}

std::string unauthorized_body() {
  return Ordered{{"error", "Unauthorized."}, {"code", "unauthorized"}}.dump();
}

std::string permit_ok_body(int duration) {
  return Ordered{{"ok", true}, {"duration", duration}}.dump();
}

Ordered zha_devices_body(const Json& result) {
  auto str = [](const Json& row, const char* key) -> Ordered {
    auto it = row.find(key);
    if (it == row.end() || !it->is_string()) return nullptr;
    auto t = text::trim(it->get_ref<const std::string&>());
    return t.empty() ? Ordered(nullptr) : Ordered(std::string(t));
  };
  Ordered devices = Ordered::array();
  if (result.is_array()) {
    for (const auto& row : result) {
      if (!row.is_object()) continue;
      Ordered ieee = str(row, "ieee");
      if (ieee.is_null()) continue;
      auto avail = row.find("available");
      devices.push_back(Ordered{
          {"ieee", ieee},
          {"name", str(row, "name")},
          {"manufacturer", str(row, "manufacturer")},
          {"model", str(row, "model")},
          {"available", avail != row.end() && avail->is_boolean() ? Ordered(avail->get<bool>())
                                                                  : Ordered(nullptr)}});
    }
  }
  return Ordered{{"devices", std::move(devices)}};
}

void set_registry_outcome(ZhaHealth& h, const Json* result, std::string_view error) {
  if (result != nullptr && result->is_array()) {
    h.registry_readable = true;
    h.registry_error_code.reset();
  } else if (result != nullptr) {
    h.registry_readable = false;
    h.registry_error_code = "registry_unexpected_shape";
  } else {
    h.registry_readable = false;
    h.registry_error_code = classify_zha_error(error).code;
  }
}

void set_zha_outcome(ZhaHealth& h, bool ok, std::string_view error) {
  h.zha_devices_readable = ok;
  if (ok) {
    h.zha_error_code.reset();
  } else {
    h.zha_error_code = classify_zha_error(error).code;
  }
}

std::string zha_health_body(const ZhaHealth& h) {
  auto opt = [](const std::optional<std::string>& s) { return s ? Ordered(*s) : Ordered(nullptr); };
  return Ordered{{"hubReachable", true},
                 {"supervisorTokenPresent", h.supervisor_token_present},
                 {"registryReadable", h.registry_readable},
                 {"registryErrorCode", opt(h.registry_error_code)},
                 {"zhaDevicesReadable", h.zha_devices_readable},
                 {"zhaErrorCode", opt(h.zha_error_code)}}
      .dump();
}

}  // namespace dinodia::telemetry
