#pragma once
// The Zigbee helper endpoints (docs/compatibility.md#zigbee): POST /_dinodia/zha/permit,
// GET /_dinodia/zha/devices, GET /_dinodia/zha/health. Each needs a hub token; permit calls the
// zha.permit service over REST, devices and health use one-shot WebSocket commands. The rules
// (duration, body parsing, error mapping, output shapes) live in telemetry/zha.hpp.
#include <functional>
#include <memory>
#include <vector>

#include "ha_bridge/local_routes.hpp"
#include "ha_bridge/token_registry.hpp"
#include "ha_client/ha_client.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::agent {

// `io` returns the loop the Home Assistant calls run on (the bridge's); it is only called while
// a request is handled, so it may be bound after the routes are built.
std::vector<ha_bridge::LocalRoute> zha_routes(
    std::shared_ptr<const ha_bridge::TokenRegistry> tokens, ha_client::HaClientConfig ha,
    std::function<boost::asio::io_context&()> io);

}  // namespace dinodia::agent
