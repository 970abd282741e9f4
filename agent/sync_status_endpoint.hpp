#pragma once
// GET /_dinodia/sync-status (docs/compatibility.md#sync-status): 0.4.17's fields plus per-origin
// counters and the last attempt. 404 {"error":"Not found."} unless sync_status_token is set and the
// presented token (bearer, x-dinodia-sync-status-token, or ?token=) matches in constant time.
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/options.hpp"
#include "agent/state_store.hpp"
#include "ha_bridge/bridge.hpp"
#include "ha_bridge/local_routes.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::agent {

// The token the caller presented: first non-empty of the Authorization bearer token, the
// x-dinodia-sync-status-token header (trimmed), the `token` query parameter (decoded, trimmed).
std::string presented_sync_status_token(const ha_bridge::LocalRequest& request);

// The 200 body. `store` may be null (state database unavailable). `electric_usage` is the
// telemetry's status object (TelemetryService::status_json()); null: tracking not running,
// reported with zero counts and `enabled` from the option.
nlohmann::ordered_json sync_status_json(const Options& options, const StateStore* store,
                                        const ha_bridge::TokenRegistry& tokens,
                                        const nlohmann::json* electric_usage = nullptr);

// The `kioskRelief` object the agent adds to the body (docs/lan-bridge.md#kiosk-relief): the
// options, whether the event stream is up, and the bridge's relief counters.
nlohmann::ordered_json kiosk_relief_status_json(const Options& options,
                                                ha_bridge::LanBridge& bridge);

// `status` builds the body on each authorised request.
ha_bridge::LocalRoute sync_status_route(const std::string& configured_token,
                                        std::function<nlohmann::ordered_json()> status);

}  // namespace dinodia::agent
