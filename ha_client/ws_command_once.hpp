#pragma once
// One WebSocket command to Home Assistant on a new connection (callbacks, see ha_client.hpp).
#include <chrono>
#include <string>

#include "ha_client/config.hpp"

namespace dinodia::ha_client {

// Each credential is tried once, each on a connection of its own. Errors: ha_ws_auth_missing,
// ha_ws_auth_invalid, ha_ws_timeout, ha_ws_closed, ha_ws_result_error[:<message>], or the
// transport's own message (e.g. "Unexpected server response: 502").
void ws_command_once(boost::asio::io_context& io, const HaClientConfig& config, std::string type,
                     nlohmann::json payload, std::chrono::milliseconds timeout,
                     JsonCallback callback);

}  // namespace dinodia::ha_client
