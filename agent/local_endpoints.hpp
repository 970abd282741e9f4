#pragma once
// The endpoints the agent answers itself on port 8099 (legacy §5): health, sync status and the
// Zigbee helpers. Each is a LocalRoute handed to the bridge.
#include <vector>

#include "agent/options.hpp"
#include "ha_bridge/local_routes.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::agent {

std::vector<ha_bridge::LocalRoute> local_routes(const Options& options,
                                                const ha_bridge::TokenRegistry& tokens);

}  // namespace dinodia::agent
