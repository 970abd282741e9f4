#pragma once
// What every call of the agent's Home Assistant client (ha_client.hpp) needs: where Home
// Assistant is, and which credentials to present.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ha_bridge/upstream_target.hpp"
#include "ha_client/reconnect_policy.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::ha_client {

struct HaClientConfig {
  ha_bridge::UpstreamTarget upstream;
  std::string supervisor_token;  // SUPERVISOR_TOKEN (REST bearer, WS header)
  // ws_auth_mode order, empties removed; moved through as ha_bridge/ws_credentials.hpp says.
  std::vector<std::string> ws_tokens;
  std::chrono::milliseconds request_timeout{15000};
  std::chrono::milliseconds connect_timeout{10000};
  ReconnectPolicy reconnect;  // the tracker connection's back-off (reconnect_policy.hpp)
};

// `error` is empty on success; then `value` holds the result.
using JsonCallback = std::function<void(std::string error, nlohmann::json value)>;

}  // namespace dinodia::ha_client
