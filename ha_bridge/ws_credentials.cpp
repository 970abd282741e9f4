#include "ha_bridge/ws_credentials.hpp"

#include <nlohmann/json.hpp>

namespace dinodia::ha_bridge {

std::optional<std::size_t> credential_for_auth(std::size_t index, std::size_t count) {
  if (count == 0) return std::nullopt;
  return index < count ? index : 0;
}

std::size_t credential_after_rejection(std::size_t index, std::size_t count) {
  if (count == 0) return 0;
  return index + 1 < count ? index + 1 : 0;
}

std::optional<std::size_t> untried_credential_after_rejection(std::size_t index,
                                                              std::size_t count) {
  if (index + 1 >= count) return std::nullopt;
  return index + 1;
}

std::string ws_auth_message(std::string_view access_token) {
  return nlohmann::json{{"type", "auth"}, {"access_token", access_token}}.dump();
}

}  // namespace dinodia::ha_bridge
