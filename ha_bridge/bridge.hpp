#pragma once
// The LAN bridge on port 8099: kiosk and iOS apps in Home mode call Home Assistant REST paths
// and /api/websocket with a hub token; the bridge authenticates them (hub_access.hpp) and
// relays to Core through the Supervisor (docs/architecture.md).
//
// Asynchronous style, by what a piece of the bridge does:
//   * a sequence of steps on one connection is a coroutine (asio::awaitable): the HTTP session's
//     keep-alive loop and the HTTP relay (detail/http_session.cpp, detail/http_relay.cpp). Each
//     phase has its own deadline and bound, and reads top to bottom; the hot path awaits
//     operations directly, without a coroutine frame per write;
//   * what runs alongside such a sequence is a callback: the deadline timer, the client watch
//     while Home Assistant works, the waiting-exchanges ticker;
//   * the WebSocket relay is callbacks throughout, as Boost.Beast's websocket examples
//     (detail/ws_relay.cpp): both directions run at once and share the session's state, so one
//     object whose handlers run on one strand is simpler than two coroutines and their timers.
// Everything of a connection runs on the single thread of the worker that accepted it.
//
// Public surface only: no Asio/Beast here, so the agent's translation units stay light.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ha_bridge/local_routes.hpp"
#include "ha_bridge/relief_signals.hpp"
#include "ha_bridge/token_registry.hpp"
#include "ha_bridge/upstream_target.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::ha_bridge {

struct BridgeConfig {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8099;  // 0 = pick a free port (tests)
  UpstreamTarget upstream;
  std::string supervisor_token;                 // replaces the client's Authorization upstream
  std::vector<std::string> upstream_ws_tokens;  // ws_auth_mode order (ws_credentials.hpp)
  std::vector<std::string> allowed_path_regex;
  // Whether hub-token holders may call services of the `hassio` domain (REST and WebSocket
  // call_service); refused by default, as no app needs them (docs/http-input.md).
  bool allow_hassio_domain = false;

  std::size_t max_header_bytes = std::size_t{32} * 1024;  // HA's own line limit is 24570
  // Like the Supervisor's MAX_CLIENT_SIZE.
  std::size_t max_body_bytes = std::size_t{16} * 1024 * 1024;
  std::chrono::seconds header_timeout{10};  // from the first byte to the end of the header
  std::chrono::seconds idle_timeout{65};    // keep-alive wait for the next request
  std::chrono::seconds io_timeout{30};      // any single body read/write stalling this long
  std::chrono::seconds upstream_connect_timeout{10};
  std::chrono::seconds upstream_timeout{300};  // like the Supervisor's proxy timeout
  std::size_t upstream_pool_size = 32;         // idle keep-alive connections kept upstream

  // Hostile devices on the LAN (docs/hostile-clients.md). The total is lowered at start to fit
  // the descriptor limit, leaving room for each client's upstream connection and the agent's
  // own files; at the limit the oldest connection that never proved a hub token is closed.
  // 1024 is far above what a home's kiosks and phones hold, and it bounds what a burst leaves
  // behind: Asio keeps each closed socket's reactor state for the next socket, so the most
  // connections ever open stay resident (about 1.4 MiB at 1024, 5 MiB at 4096: bench/README.md).
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 64;  // a kiosk holds a handful
  // A connection that has not proved a hub token waits this long for its next request (the
  // keep-alive idle_timeout is for those that have).
  std::chrono::seconds unauthenticated_idle_timeout{5};

  // WebSocket relay (docs/compatibility.md#websocket, docs/lan-bridge.md).
  std::chrono::seconds ws_auth_timeout{10};  // as Core's AUTH_MESSAGE_TIMEOUT
  // Before a client has proved a hub token (docs/lan-bridge.md, "Before authentication"): an
  // `auth` message is a few hundred bytes and no app sends anything else before it, so a few
  // KiB per connection, and a budget for all such connections together; a message that would
  // exceed the budget closes its connection (1013) instead of being queued.
  std::size_t ws_preauth_max_messages = 8;
  std::size_t ws_preauth_max_bytes = 4096;
  std::size_t ws_preauth_budget_bytes = std::size_t{128} * 1024;
  // After a valid hub token, until Home Assistant's auth_ok: what is buffered for the client.
  std::size_t ws_pending_max_messages = 64;
  std::size_t ws_pending_max_bytes = std::size_t{1024} * 1024;
  // As the Supervisor's limit.
  std::size_t ws_max_message_from_upstream = std::size_t{64} * 1024 * 1024;
  std::size_t ws_max_message_from_client = std::size_t{16} * 1024 * 1024;
  // A client too slow for this much queued data gets a clean close.
  std::size_t ws_client_send_queue_bytes = std::size_t{16} * 1024 * 1024;
  std::chrono::seconds ws_ping_interval{30};

  // Kiosk-load relief (docs/lan-bridge.md#kiosk-relief): identical reads in flight share one
  // upstream request, and an answer at most `kiosk_relief_window` old is served from memory
  // while relief_signals() reports nothing it depends on moved (0: joining only). Off here, so
  // that the bridge alone relays as before; the agent turns it on from its options.
  bool kiosk_relief = false;
  std::chrono::milliseconds kiosk_relief_window{1000};

  int threads = 2;
};

// Counters for status output and tests; read without locks.
struct BridgeStats {
  std::uint64_t http_requests = 0;
  std::uint64_t http_rejected_unauthorized = 0;
  std::uint64_t http_rejected_forbidden = 0;
  std::uint64_t http_upstream_errors = 0;
  std::uint64_t ws_sessions = 0;
  std::uint64_t ws_sessions_active = 0;
  std::uint64_t connections_active = 0;
  std::uint64_t connections_refused = 0;  // over a limit, closed at once
  std::uint64_t connections_evicted = 0;  // unauthenticated, closed to make room
  std::size_t max_connections = 0;        // the total limit in force
  // Kiosk-load relief: relievable requests answered by joining one in flight, answered from
  // memory, and sent to Home Assistant; bytes of answers held (or being captured) now.
  std::uint64_t relief_joined = 0;
  std::uint64_t relief_served_held = 0;
  std::uint64_t relief_upstream = 0;
  std::size_t relief_held_bytes = 0;
  // WebSocket sessions that ended without a login of their own to Home Assistant.
  std::uint64_t relief_ws_sessions_without_login = 0;
};

class LanBridge {
 public:
  LanBridge(BridgeConfig config, std::shared_ptr<const TokenRegistry> tokens,
            std::vector<LocalRoute> local_routes);
  ~LanBridge();
  LanBridge(const LanBridge&) = delete;
  LanBridge& operator=(const LanBridge&) = delete;

  // Binds and starts serving on its own threads. Throws std::system_error (e.g. port in use).
  void start();
  std::uint16_t bound_port() const;
  // Stops accepting at once, lets in-flight exchanges finish for up to `grace`, then closes
  // every connection. Blocks until the threads have exited.
  void stop(std::chrono::milliseconds grace);
  BridgeStats stats() const;
  // The bridge's event loop, for components that talk to Home Assistant on the same loop.
  boost::asio::io_context& io_context();
  // Where the agent's Home Assistant event stream reports to the kiosk-load relief.
  ReliefSignals& relief_signals();
  // Home Assistant's `auth_required` message as a WebSocket of the agent's own received it from
  // the same upstream: the relay greets LAN clients with it and so never has to connect upstream
  // for a client that has not proved a hub token (docs/lan-bridge.md, "Before authentication").
  // Thread-safe; a message that is not a small auth_required object is ignored.
  void remember_ha_greeting(std::string_view auth_required_message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dinodia::ha_bridge
