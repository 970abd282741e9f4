#pragma once
// Several WebSocket commands to Home Assistant on one new connection (callbacks, see
// ha_client.hpp), each answered with Home Assistant's own result: the REST shims
// (docs/lan-bridge.md#rest-shims) relay an error's `code`, which ws_command_once folds into
// its error text.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "ha_client/config.hpp"

namespace dinodia::ha_client {

// One command's `result` message from Home Assistant: {"success": true, "result": ...} or
// {"success": false, "error": {"code", "message"}}.
struct WsResult {
  bool success = false;
  nlohmann::json result;  // when success
  std::string code;       // error.code when not success, e.g. "not_found", "unauthorized"
  std::string message;    // error.message when not success
};

// `error` is empty when every command was answered; then `results` holds one result per
// command, in order. Otherwise it names what failed, as ws_command_once's errors do
// (ha_ws_auth_missing, ha_ws_auth_invalid, ha_ws_timeout, ha_ws_closed, or the transport's own
// message such as "Unexpected server response: 502"), and `results` is empty.
using WsResultsCallback = std::function<void(std::string error, std::vector<WsResult> results)>;

// Each command is an object with its `type` and payload; the ids are added here, increasing
// as Core requires. The commands are written one after another once Core said auth_ok, without
// waiting for the answers; `timeout` bounds the whole exchange. Each credential is tried once,
// each on a connection of its own. No commands: no connection, an empty `results`.
void ws_commands_once(boost::asio::io_context& io, const HaClientConfig& config,
                      std::vector<nlohmann::json> commands, std::chrono::milliseconds timeout,
                      WsResultsCallback callback);

}  // namespace dinodia::ha_client
