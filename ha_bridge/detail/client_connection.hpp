#pragma once
// Internal to ha_bridge: one client connection of the HTTP path, as the session and the relay
// share it. Everything here runs on the loop of the worker that accepted the connection, in
// coroutines (asio::awaitable; see bridge.hpp for why the HTTP path uses them).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/detail/deadline.hpp"
#include "ha_bridge/detail/http_head.hpp"
#include "ha_bridge/detail/read_buffer.hpp"
#include "ha_bridge/detail/upstream_pool.hpp"
#include "ha_bridge/detail/waiting_exchanges.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::ha_bridge::detail {

// Completion token of the relay's awaited operations: errors as values, not exceptions.
inline constexpr auto kAwaitTuple = asio::as_tuple(asio::use_awaitable);

struct ClientConnection {
  ClientConnection(tcp::socket client_socket, UpstreamPool& pool, WaitingExchanges& waiting_list)
      : socket(std::move(client_socket)),
        upstream_pool(pool),
        waiting(waiting_list),
        deadline(socket.get_executor(), [this] { on_deadline(); }) {}

  tcp::socket socket;
  // The worker's, on the same event loop as this connection.
  UpstreamPool& upstream_pool;
  WaitingExchanges& waiting;
  ReadBuffer buffer;  // bytes read from the client and not parsed yet
  // The timeout of whatever the connection waits for, on either side. When it passes, both
  // sockets' pending operations are cancelled and `deadline.expired()` tells them why.
  Deadline deadline;
  bool stopping = false;  // shutdown began: answer the current request, then close
  // The upstream connection of the exchange in flight, so that a forced close and the deadline
  // reach it.
  tcp::socket* upstream = nullptr;

  // Storage every exchange on this connection reuses, so that a request allocates nothing once
  // these have grown to fit.
  std::vector<HeaderField> request_fields;
  std::vector<HeaderField> response_fields;
  std::vector<std::string_view> request_body;
  std::vector<std::string_view> response_body;
  std::string head;  // the head being sent: the upstream request, then the client's answer
  std::string chunk_lines;
  std::vector<boost::asio::const_buffer> gather;  // what one write sends
  // The hub token this connection last proved, so that it is not hashed again on every request.
  ProvenToken proven_token;
  // Who the connection is, for the connection limits and the failed-token count
  // (docs/hostile-clients.md): set once when it opens, and when it first proves a token.
  asio::ip::address peer;
  std::uint64_t tracker_id = 0;
  // Whether any request on this connection proved a hub token. One that never did ends with
  // its first 401 (docs/http-input.md); a kiosk whose token was just rotated out keeps its
  // connection to try the new one.
  bool authenticated = false;

  // The client watch of the exchange in flight (client_watch.hpp): a read on the client socket
  // while Home Assistant works, so that a client that goes away cancels the upstream request.
  struct Watch {
    bool pending = false;   // its read has not completed yet
    bool stopping = false;  // the exchange no longer wants it
    bool gone = false;      // the client closed or reset the connection
    std::size_t max_buffered = 0;
  } watch;
  // Where this connection's exchange sits in `waiting`, and since which tick.
  std::size_t waiting_slot = WaitingExchanges::kNotWaiting;
  std::uint64_t waiting_since = 0;
  // The session that owns this connection: pending timer waits and watch reads hold it.
  std::weak_ptr<void> owner;
  void set_owner(const std::shared_ptr<void>& session) {
    owner = session;
    deadline.set_owner(session);
  }

  // After an awaited operation: the deadline's verdict wins over the cancellation it caused.
  beast::error_code checked(beast::error_code ec) const {
    return deadline.expired() ? beast::error_code(beast::error::timeout) : ec;
  }
  // After a read into `buffer`: keeps what arrived.
  beast::error_code read_done(beast::error_code ec, std::size_t n) {
    ec = checked(ec);
    if (!ec) buffer.commit(n);
    return ec;
  }

  // Closes both sides now (shutdown, or the client went away).
  void close_all() {
    boost::system::error_code ignored;
    socket.close(ignored);
    if (upstream) upstream->close(ignored);
  }

 private:
  void on_deadline() {
    boost::system::error_code ignored;
    socket.cancel(ignored);
    if (upstream) upstream->cancel(ignored);
  }
};

enum class ExchangeEnd { keep_alive, close };

// A read from the client into its buffer, without a coroutine frame of its own (the writes are
// write_gathered.hpp). The caller sets the deadline before and passes the result through
// read_done after.
inline auto read_from_client(ClientConnection& client, std::size_t min_room = 1024) {
  return client.socket.async_read_some(client.buffer.prepare(min_room), kAwaitTuple);
}

// A request on this connection proved a hub token: from now on the connection is not a
// candidate for eviction and gets the keep-alive idle timeout. A flag test per request; the
// tracker's lock once per connection.
inline void note_authenticated(ClientConnection& client, BridgeContext& ctx) {
  if (client.authenticated) return;
  client.authenticated = true;
  ctx.connections.mark_authenticated(client.tracker_id);
}

}  // namespace dinodia::ha_bridge::detail
