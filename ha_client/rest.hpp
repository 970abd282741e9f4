#pragma once
// The agent's REST calls to the Supervisor and Home Assistant Core (callbacks, see
// ha_client.hpp).
#include <chrono>
#include <functional>
#include <string>

#include "ha_client/config.hpp"

namespace dinodia::ha_client {

struct HttpReply {
  int status = 0;
  std::string body;
};
// A raw REST call to the Supervisor with the bearer token. `error` is set for transport
// failures and timeouts only (any HTTP status is a reply).
void supervisor_request(boost::asio::io_context& io, const HaClientConfig& config,
                        const std::string& method, const std::string& target, std::string body,
                        std::chrono::milliseconds timeout,
                        std::function<void(std::string error, HttpReply reply)> callback);

// GET /network/info (2.5 s). The parsed JSON on 2xx; an error otherwise.
void get_network_info(boost::asio::io_context& io, const HaClientConfig& config,
                      JsonCallback callback);
// GET /core/api/states/<entity_id>. The state object on 2xx; an error otherwise.
void get_state(boost::asio::io_context& io, const HaClientConfig& config,
               const std::string& entity_id, JsonCallback callback);
// POST /core/api/services/<domain>/<service>. Errors as the Zigbee routes report them
// (docs/compatibility.md): supervisor_token_missing, invalid_service,
// ha_service_error:<status>[:<trimmed body>].
void call_service(boost::asio::io_context& io, const HaClientConfig& config,
                  const std::string& domain, const std::string& service, const nlohmann::json& data,
                  JsonCallback callback);

// Percent-encodes a path segment like encodeURIComponent.
std::string encode_uri_component(const std::string& text);

}  // namespace dinodia::ha_client
