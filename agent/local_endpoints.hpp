#pragma once
// Two of the endpoints the agent answers itself on port 8099 (docs/compatibility.md#endpoints):
// health and sync status. The Zigbee helpers (agent/zha_endpoints.hpp) and the doctor
// (agent/doctor_endpoint.hpp) are built beside them; agent/agent.cpp hands all of them to the
// bridge as LocalRoutes.
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/options.hpp"
#include "ha_bridge/local_routes.hpp"

namespace dinodia::agent {

// `sync_status` builds the body of GET /_dinodia/sync-status (sync_status_endpoint.hpp); without
// it the endpoint answers 404 like a missing route.
std::vector<ha_bridge::LocalRoute> local_routes(
    const Options& options, std::function<nlohmann::ordered_json()> sync_status = {});

}  // namespace dinodia::agent
