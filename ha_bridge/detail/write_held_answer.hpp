#pragma once
// Internal to ha_bridge: an answer of the kiosk-load relief (held, or shared by a request in
// flight) written to a client as the relay would have written it (docs/lan-bridge.md#kiosk-relief).
#include <boost/asio/awaitable.hpp>

#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/detail/relief_table.hpp"

namespace dinodia::ha_bridge::detail {

// Home Assistant's status, fields and body, framed by its Content-Length, with the Connection
// field this client's version and keep-alive need. `answer` must live until the write is done.
asio::awaitable<ExchangeEnd> write_held_answer(ClientConnection& client, BridgeContext& ctx,
                                               const HeldAnswer& answer, bool keep_alive,
                                               int client_version);

}  // namespace dinodia::ha_bridge::detail
