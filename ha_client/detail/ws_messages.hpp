#pragma once
// Internal to ha_client: reading Home Assistant's WebSocket messages.
#include <nlohmann/json.hpp>
#include <string>

namespace dinodia::ha_client::detail {

// Calls `f` with each message object in a frame: HA may coalesce several messages into one JSON
// array frame.
template <typename F>
void for_each_message(const std::string& text, F&& f) {
  const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_array()) {
    for (const auto& m : parsed) {
      if (m.is_object()) f(m);
    }
  } else if (parsed.is_object()) {
    f(parsed);
  }
}

// The error.message of a failed `result`, or empty.
std::string result_error_message(const nlohmann::json& msg);
// The error.code of a failed `result` ("not_found", "unauthorized", ...), or empty.
std::string result_error_code(const nlohmann::json& msg);

}  // namespace dinodia::ha_client::detail
