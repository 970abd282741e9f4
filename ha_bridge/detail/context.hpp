#pragma once
// Internal to ha_bridge: state shared by the listener, the HTTP relay and the WebSocket relay.
// Includes Beast/Asio, so only ha_bridge's own .cpp files include it.
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <iterator>
#include <memory>
#include <mutex>

#include "ha_bridge/bridge.hpp"
#include "ha_bridge/detail/auth_failures.hpp"
#include "ha_bridge/detail/auth_ok_cache.hpp"
#include "ha_bridge/detail/auth_required_cache.hpp"
#include "ha_bridge/detail/byte_budget.hpp"
#include "ha_bridge/detail/connection_tracker.hpp"
#include "ha_bridge/detail/relief_table.hpp"
#include "ha_bridge/detail/relief_upstream.hpp"
#include "ha_bridge/detail/upstream_pool.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct AtomicStats {
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> http_rejected_unauthorized{0};
  std::atomic<std::uint64_t> http_rejected_forbidden{0};
  std::atomic<std::uint64_t> http_upstream_errors{0};
  std::atomic<std::uint64_t> ws_sessions{0};
  std::atomic<std::uint64_t> ws_sessions_active{0};
  std::atomic<std::uint64_t> connections_active{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> connections_evicted{0};
  // Kiosk-load relief (docs/lan-bridge.md#kiosk-relief): relievable requests answered by joining
  // one in flight, answered from memory, and sent to Home Assistant.
  std::atomic<std::uint64_t> relief_joined{0};
  std::atomic<std::uint64_t> relief_served_held{0};
  std::atomic<std::uint64_t> relief_upstream{0};
  // WebSocket sessions that ended without a login of their own to Home Assistant.
  std::atomic<std::uint64_t> relief_ws_sessions_without_login{0};
};

struct BridgeContext {
  BridgeConfig config;
  std::shared_ptr<const TokenRegistry> tokens;
  AllowList allow_list;
  std::vector<LocalRoute> local_routes;  // the agent's own, matched before the relay
  // Home Assistant paths Home Assistant does not have, answered by the agent once the relay's
  // access decision admitted them (docs/lan-bridge.md#rest-shims).
  std::vector<LocalRoute> rest_shims;
  // "Host: ...\r\nAuthorization: Bearer <Supervisor token>\r\n": what every relayed request
  // carries in place of the client's Host and Authorization.
  std::string upstream_fields;
  tcp::endpoint upstream_endpoint;  // resolved once at start (re-resolved on connect failure)
  AtomicStats stats;
  ConnectionTracker connections;
  // WebSocket relay: data held for clients without a proven hub token, and Home Assistant's
  // greeting the relay answers them with (docs/lan-bridge.md, "Before authentication").
  ByteBudget ws_preauth_budget;
  AuthRequiredCache ws_auth_required;
  AuthFailures auth_failures;  // failed hub-token attempts per client address
  // Kiosk-load relief (docs/lan-bridge.md#kiosk-relief): what the agent's event stream reports,
  // and the answers in flight and held; no table when the relief is off.
  ReliefSignals relief_signals;
  std::unique_ptr<ReliefTable> relief;
  // Home Assistant's auth_ok, for WebSocket sessions the relief answers without a login of their
  // own (docs/lan-bridge.md#one-shot-websocket-sessions).
  AuthOkCache ws_auth_ok;

  // The relief's own logged-in WebSocket for registry lists (relief_upstream.hpp), made on the
  // loop of the first session that needs it.
  ReliefUpstream& relief_upstream(const asio::any_io_executor& loop) {
    std::lock_guard lock(relief_upstream_mutex_);
    if (!relief_upstream_) relief_upstream_ = ReliefUpstream::create(loop, *this);
    return *relief_upstream_;
  }
  // At the bridge's stop: its connection closes with the sessions'.
  void stop_relief_upstream() {
    std::lock_guard lock(relief_upstream_mutex_);
    if (relief_upstream_) relief_upstream_->stop();
  }

  BridgeContext(BridgeConfig c, std::shared_ptr<const TokenRegistry> t, std::vector<LocalRoute> r)
      : config(std::move(c)),
        tokens(std::move(t)),
        allow_list(config.allowed_path_regex),
        local_routes(std::move(r)),
        upstream_fields("Host: " + config.upstream.host_header() + "\r\nAuthorization: Bearer " +
                        config.supervisor_token + "\r\n"),
        ws_preauth_budget(config.ws_preauth_budget_bytes) {
    if (config.kiosk_relief) {
      ReliefTable::Limits limits;
      limits.window = config.kiosk_relief_window;
      relief = std::make_unique<ReliefTable>(relief_signals, limits);
    }
    // One list per kind, in the order given: the shims are matched at another point.
    const auto first_shim =
        std::stable_partition(local_routes.begin(), local_routes.end(),
                              [](const LocalRoute& route) { return !route.ha_rest_shim; });
    rest_shims.assign(std::make_move_iterator(first_shim),
                      std::make_move_iterator(local_routes.end()));
    local_routes.erase(first_shim, local_routes.end());
  }

 private:
  std::mutex relief_upstream_mutex_;
  std::shared_ptr<ReliefUpstream> relief_upstream_;
};

}  // namespace dinodia::ha_bridge::detail
