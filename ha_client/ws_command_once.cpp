#include "ha_client/ws_command_once.hpp"

#include <utility>
#include <vector>

#include "ha_client/ws_commands_once.hpp"

namespace dinodia::ha_client {

using json = nlohmann::json;

// One command is the one-element case of ws_commands_once; only the error is told differently:
// Home Assistant's failed result becomes "ha_ws_result_error[:<message>]", which the Zigbee
// routes' error mapping reads (telemetry/zha.hpp).
void ws_command_once(boost::asio::io_context& io, const HaClientConfig& config, std::string type,
                     json payload, std::chrono::milliseconds timeout, JsonCallback callback) {
  json command = payload.is_object() ? std::move(payload) : json::object();
  command["type"] = std::move(type);
  std::vector<json> commands;
  commands.push_back(std::move(command));
  ws_commands_once(
      io, config, std::move(commands), timeout,
      [callback = std::move(callback)](std::string error, std::vector<WsResult> results) {
        if (!error.empty()) return callback(std::move(error), json());
        WsResult& r = results.front();
        if (r.success) return callback("", std::move(r.result));
        callback(r.message.empty() ? "ha_ws_result_error" : "ha_ws_result_error:" + r.message,
                 json());
      });
}

}  // namespace dinodia::ha_client
