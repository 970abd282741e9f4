#pragma once
// Internal to ha_bridge: the answer to a request relay_access refused (relay_access.hpp), with
// the legacy bodies (docs/compatibility.md#endpoints).
#include <boost/asio/awaitable.hpp>

#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/detail/relay_access.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

// no_hub_token: waits as long as the client's address has earned by failed tokens
// (docs/hostile-clients.md), then 401; a connection that never proved a token ends with it
// (docs/http-input.md). path_not_allowed: 403 naming the normalised path. The request's body,
// if any, is never read: the connection then ends after the answer.
asio::awaitable<ExchangeEnd> refuse_access(ClientConnection& client, BridgeContext& ctx,
                                           const RequestHead& head, const NormalisedTarget& target,
                                           RelayAccess refusal);

}  // namespace dinodia::ha_bridge::detail
