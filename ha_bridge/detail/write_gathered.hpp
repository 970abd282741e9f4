#pragma once
// Internal to ha_bridge: how the HTTP path writes, to the client and to Home Assistant alike.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <tuple>

#include "ha_bridge/detail/client_connection.hpp"

namespace dinodia::ha_bridge::detail {

// Writes all of `client.gather` to `socket` (the client's or the upstream one). The bytes are
// offered to the socket at once first: a request or a kiosk's answer nearly always fits in the
// socket's send buffer, and then no asynchronous operation is started, whose completion Asio
// would post to the loop and dispatch from there (a scheduler round trip and a coroutine
// suspension per write, about a tenth of a relayed request's instructions). What does not fit
// is written asynchronously, under the deadline the caller set.
asio::awaitable<std::tuple<beast::error_code, std::size_t>> write_gathered(ClientConnection& client,
                                                                           tcp::socket& socket);

// write_gathered under a deadline of `timeout` from now: every write of the HTTP path is one of
// these. Returns write_gathered's awaitable itself, so it adds no coroutine frame; the caller
// passes the result through ClientConnection::checked and then lifts the deadline.
inline auto write_within(ClientConnection& client, tcp::socket& socket,
                         std::chrono::steady_clock::duration timeout) {
  client.deadline.expires_after(timeout);
  return write_gathered(client, socket);
}

}  // namespace dinodia::ha_bridge::detail
