#pragma once
// Internal to ha_bridge: who may have a request relayed to Home Assistant
// (docs/compatibility.md#endpoints): a hub token first, then the allow-list and the hassio rule.
// The same decision admits the REST shims, which stand in for Home Assistant paths
// (docs/lan-bridge.md#rest-shims), so that the two cannot drift apart.
//
// A plain function, not a coroutine: the relay's hot path asks it on every request without a
// coroutine frame; only a refusal (refuse_access.hpp) is awaited.
#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

enum class RelayAccess {
  granted,
  no_hub_token,      // 401 {"error":"Unauthorized."}
  path_not_allowed,  // 403 {"error":"Path not allowed.","path":...}
};

// Decides, counts a refusal in the bridge's stats and, once the hub token is proved, marks the
// connection authenticated (note_authenticated). Reads only the request head.
RelayAccess relay_access(ClientConnection& client, BridgeContext& ctx, const RequestHead& head,
                         const NormalisedTarget& target);

}  // namespace dinodia::ha_bridge::detail
