#pragma once
// The endpoints the agent answers itself on port 8099 (docs/compatibility.md#endpoints): health,
// sync status and the Zigbee helpers. Each is a LocalRoute handed to the bridge.
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/options.hpp"
#include "ha_bridge/local_routes.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::agent {

// `sync_status` builds the body of GET /_dinodia/sync-status (sync_status_endpoint.hpp); without
// it the endpoint answers 404 like a missing route.
std::vector<ha_bridge::LocalRoute> local_routes(
    const Options& options, const ha_bridge::TokenRegistry& tokens,
    std::function<nlohmann::ordered_json()> sync_status = {});

}  // namespace dinodia::agent
