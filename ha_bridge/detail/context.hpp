#pragma once
// Internal to ha_bridge: state shared by the listener, the HTTP relay and the WebSocket relay.
// Includes Beast/Asio, so only ha_bridge's own .cpp files include it.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "ha_bridge/bridge.hpp"
#include "ha_bridge/detail/auth_required_cache.hpp"
#include "ha_bridge/detail/byte_budget.hpp"
#include "ha_bridge/path_policy.hpp"
#include "ha_bridge/upstream_pool.hpp"

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
};

// Every live connection (HTTP session or WebSocket relay) registers a closer here so that
// shutdown can close what is still open after the grace period. Closers run on any thread and
// must post to their own strand.
class ConnectionTracker {
 public:
  using Closer = std::function<void()>;
  // `close` closes the connection at once. `on_stopping` (optional) is called when shutdown
  // begins: an HTTP session closes if it is idle and stops keeping the connection alive.
  std::uint64_t add(Closer close, Closer on_stopping = {});
  void remove(std::uint64_t id);
  void notify_stopping();
  void close_all();
  std::size_t size() const;
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void set_stopping() { stopping_.store(true, std::memory_order_release); }

 private:
  mutable std::mutex mutex_;
  struct Entry {
    Closer close;
    Closer on_stopping;
  };
  std::unordered_map<std::uint64_t, Entry> closers_;
  std::uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
};

struct BridgeContext {
  BridgeConfig config;
  std::shared_ptr<const TokenRegistry> tokens;
  AllowList allow_list;
  std::vector<LocalRoute> local_routes;
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

  BridgeContext(BridgeConfig c, std::shared_ptr<const TokenRegistry> t, std::vector<LocalRoute> r)
      : config(std::move(c)),
        tokens(std::move(t)),
        allow_list(config.allowed_path_regex),
        local_routes(std::move(r)),
        upstream_fields("Host: " + config.upstream.host_header() + "\r\nAuthorization: Bearer " +
                        config.supervisor_token + "\r\n"),
        ws_preauth_budget(config.ws_preauth_budget_bytes) {}
};

}  // namespace dinodia::ha_bridge::detail
