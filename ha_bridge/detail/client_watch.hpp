#pragma once
// Internal to ha_bridge: the client watch. While Home Assistant works on a request, a read stays
// pending on the client socket: EOF or a reset means the client went away, and closing the
// upstream connection then cancels the upstream request instead of letting it run on for up to
// five minutes. Bytes of a pipelined next request are kept (up to a bound, then the watch stops
// reading). Only exchanges that wait for a while are watched (waiting_exchanges.hpp).
//
// The watch is a callback, not a coroutine: it runs alongside the exchange's coroutine, which
// is suspended on the upstream read meanwhile (bridge.hpp).
#include <boost/asio/awaitable.hpp>

#include "ha_bridge/detail/client_connection.hpp"

namespace dinodia::ha_bridge::detail {

// Arms the watch of a waiting exchange (called by WaitingExchanges once it has waited a tick).
// A client that has already buffered more than the bound is not watched: its flood is answered,
// then the connection closes.
void start_watch(ClientConnection& client);

// Stops the watch (if it was armed) and waits until its read has completed, so that nothing
// else touches the client's buffer while that read may still write into it.
asio::awaitable<void> stop_watch(ClientConnection& client);

}  // namespace dinodia::ha_bridge::detail
