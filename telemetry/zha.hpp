#pragma once
// Zigbee helper endpoint rules (docs/compatibility.md#zigbee) as pure functions; the routes that
// use them live with the HA client wiring.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dinodia::telemetry {

struct ZhaError {
  int status;
  std::string code;
  std::string message;
  // {"error":<message>,"code":<code>}
  std::string body() const;
};

// 0.4.17's error mapping, checked in order on the lowercased internal error string.
ZhaError classify_zha_error(std::string_view error);

// The duration rule: a finite JSON number is floored and clamped to 1..254; anything else 60.
int permit_duration(const nlohmann::json& body);

// Permit body parsing. An empty body counts as {}. Returns the parsed value or the 400 reply body.
struct PermitBody {
  std::optional<nlohmann::json> value;
  std::string error_body;  // set when value is empty
};
PermitBody parse_permit_body(std::string_view body, bool too_large);

// The canned bodies, in the legacy key order.
std::string unauthorized_body();  // {"error":"Unauthorized.","code":"unauthorized"}
std::string permit_ok_body(int duration);

// The devices list: rows without a non-empty ieee dropped; strings trimmed, empty -> null;
// `available` kept only if boolean. `result` is the zha/devices result; a non-array gives an empty
// list.
nlohmann::ordered_json zha_devices_body(const nlohmann::json& result);

struct ZhaHealth {
  bool supervisor_token_present = false;
  bool registry_readable = false;
  std::optional<std::string> registry_error_code;
  bool zha_devices_readable = false;
  std::optional<std::string> zha_error_code;
};
// The health check's first step: its outcome from the device-registry result (or an error string).
void set_registry_outcome(ZhaHealth& h, const nlohmann::json* result, std::string_view error);
void set_zha_outcome(ZhaHealth& h, bool ok, std::string_view error);
std::string zha_health_body(const ZhaHealth& h);

}  // namespace dinodia::telemetry
