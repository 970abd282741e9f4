#pragma once
// Internal: the WebSocket relay at /api/websocket (docs/compatibility.md says what it keeps of
// the legacy relay and what it fixes). The HTTP session hands over the client's TCP stream and
// the upgrade request once it has seen a valid upgrade to exactly /api/websocket; from then on
// the relay owns the connection. Callbacks, not coroutines (bridge.hpp says why).
#include <memory>

#include "ha_bridge/detail/context.hpp"

namespace dinodia::ha_bridge::detail {

// `peer` is the client's address (connection limits, failed-token count).
void start_ws_relay(beast::tcp_stream client, const asio::ip::address& peer,
                    http::request<http::empty_body> upgrade, std::shared_ptr<BridgeContext> ctx);

}  // namespace dinodia::ha_bridge::detail
