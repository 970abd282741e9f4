#include "ha_client/detail/ws_messages.hpp"

namespace dinodia::ha_client::detail {

std::string result_error_message(const nlohmann::json& msg) {
  if (msg.contains("error") && msg["error"].is_object()) {
    const auto& e = msg["error"];
    if (e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  }
  return {};
}

std::string result_error_code(const nlohmann::json& msg) {
  if (msg.contains("error") && msg["error"].is_object()) {
    const auto& e = msg["error"];
    if (e.contains("code") && e["code"].is_string()) return e["code"].get<std::string>();
  }
  return {};
}

}  // namespace dinodia::ha_client::detail
