#pragma once
// Internal to ha_bridge: the HTTP relay, one request of a client connection relayed to Home
// Assistant Core through the Supervisor's proxy (a coroutine, as the whole HTTP path).
#include <boost/asio/awaitable.hpp>

#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

// Relays one request to Home Assistant Core. Checks auth and the allow-list first. `head` has
// parsed the request head, whose bytes are already consumed from the client's buffer (its views
// stay valid until that buffer is next prepared); the body, if any, is still unread.
asio::awaitable<ExchangeEnd> relay_http(ClientConnection& client, BridgeContext& ctx,
                                        RequestHead& head, const NormalisedTarget& target);

}  // namespace dinodia::ha_bridge::detail
