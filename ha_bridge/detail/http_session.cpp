#include "ha_bridge/detail/http_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <optional>

#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/detail/http_relay.hpp"
#include "ha_bridge/detail/refuse_access.hpp"
#include "ha_bridge/detail/relay_access.hpp"
#include "ha_bridge/detail/reply.hpp"
#include "ha_bridge/detail/whole_head.hpp"
#include "ha_bridge/detail/ws_relay.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

// As beast::websocket::is_upgrade, on the relay's lean head.
bool is_websocket_upgrade(const RequestHead& head) {
  return head.version >= 11 && head.method == http::verb::get &&
         http::token_list{head.get(http::field::connection)}.exists("upgrade") &&
         http::token_list{head.get(http::field::upgrade)}.exists("websocket");
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, const asio::ip::address& peer, std::shared_ptr<BridgeContext> ctx,
              UpstreamPool& pool, WaitingExchanges& waiting)
      : client_(std::move(socket), pool, waiting), ctx_(std::move(ctx)) {
    client_.peer = peer;
  }

  void start() {
    auto self = shared_from_this();
    client_.set_owner(self);
    std::weak_ptr<HttpSession> weak = self;
    auto executor = client_.socket.get_executor();
    tracker_id_ = ctx_->connections.add(
        [weak, executor] {
          asio::post(executor, [weak] {
            if (auto s = weak.lock()) s->force_close();
          });
        },
        [weak, executor] {
          asio::post(executor, [weak] {
            if (auto s = weak.lock()) s->begin_stopping();
          });
        },
        client_.peer, /*admitted=*/true);
    client_.tracker_id = tracker_id_;
    ctx_->stats.connections_active.fetch_add(1);
    asio::co_spawn(
        executor, [self]() { return self->run(); }, asio::detached);
  }

 private:
  void force_close() {
    if (!handed_over_) client_.close_all();
  }
  void begin_stopping() {
    client_.stopping = true;
    if (idle_ && !handed_over_) {
      boost::system::error_code ignored;
      client_.socket.close(ignored);
    }
  }

  asio::awaitable<void> run() {
    try {
      co_await serve();
    } catch (const std::exception& e) {
      log::error("Unhandled HTTP handler error", e.what());
    }
    if (!handed_over_ && client_.socket.is_open()) co_await lingering_close();
    client_.deadline.cancel();
    ctx_->connections.remove(tracker_id_);
    ctx_->stats.connections_active.fetch_sub(1);
  }

  // After an error reply with unread request bytes pending, closing at once would make the
  // kernel send RST, and the client could lose our reply. Half-close, then drain briefly.
  asio::awaitable<void> lingering_close() {
    beast::error_code ec;
    client_.socket.shutdown(tcp::socket::shutdown_send, ec);
    if (!ec) {
      client_.deadline.expires_after(std::chrono::seconds(2));
      std::size_t drained = 0;
      char scratch[4096];
      while (drained < std::size_t{1024} * 1024) {
        auto [rec, n] = co_await client_.socket.async_read_some(asio::buffer(scratch), kAwaitTuple);
        if (rec || client_.deadline.expired()) break;
        drained += n;
      }
    }
    boost::system::error_code ignored;
    client_.socket.close(ignored);
  }

  asio::awaitable<void> serve() {
    const auto& cfg = ctx_->config;
    while (!client_.stopping && !ctx_->connections.stopping()) {
      // Keep-alive wait for the first byte of the next request, then a separate (shorter)
      // deadline for the whole header so that a slow trickle cannot hold the connection.
      idle_ = true;
      if (client_.buffer.empty()) {
        if (client_.authenticated) {
          client_.deadline.expires_after(cfg.idle_timeout);
        } else {
          // Not proved a hub token yet: a short wait, holding no read buffer while it lasts
          // (docs/hostile-clients.md). An authenticated kiosk keeps the single read below.
          client_.deadline.expires_after(cfg.unauthenticated_idle_timeout);
          client_.buffer.release();
          auto [wec] = co_await client_.socket.async_wait(tcp::socket::wait_read, kAwaitTuple);
          if (client_.checked(wec)) co_return;
        }
        auto [ec, n] = co_await read_from_client(client_);
        if (client_.read_done(ec, n)) co_return;
      }
      idle_ = false;
      if (client_.stopping) co_return;

      RequestHead head(client_.request_fields, client_.request_body);
      head.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
      head.body_limit(cfg.max_body_bytes);
      beast::error_code ec;
      WholeHead whole(cfg.max_header_bytes);
      bool header_deadline = false;
      while (!whole.parse(head, client_.buffer.readable(), ec)) {
        if (!header_deadline) {
          client_.deadline.expires_after(cfg.header_timeout);
          header_deadline = true;
        }
        auto [rec, n] = co_await read_from_client(client_);
        if ((ec = client_.read_done(rec, n))) break;
      }
      if (!ec && !is_acceptable_request(head)) ec = http::error::bad_value;
      if (ec) {
        co_await reject_header(ec, head.version);
        co_return;
      }
      // The head's views point into bytes that stay put until the buffer is next prepared.
      client_.buffer.consume(whole.used());
      client_.deadline.expires_never();
      ctx_->stats.http_requests.fetch_add(1, std::memory_order_relaxed);

      const auto target = normalise_target(head.target);
      const LocalRoute* route = target ? local_route(head, *target) : nullptr;
      ExchangeEnd end = ExchangeEnd::close;
      if (route) {
        end = co_await serve_local(*route, head, *target);
      } else if (!target) {
        end = co_await reply_json(client_, *ctx_, 400, kBadRequestBody, false, head.version);
      } else if (is_websocket_upgrade(head)) {
        // As in 0.4.17, only exactly /api/websocket is upgraded; anything else loses the socket
        // without a response (docs/compatibility.md#websocket). No auth or allow-list here: the
        // relay authenticates in-band.
        if (target->client_path == "/api/websocket") hand_over_to_ws_relay(head);
      } else if (const LocalRoute* shim = rest_shim(head, *target)) {
        end = co_await serve_rest_shim(*shim, head, *target);
      } else {
        end = co_await relay_http(client_, *ctx_, head, *target);
      }
      if (end == ExchangeEnd::close) co_return;
    }
  }

  const LocalRoute* local_route(const RequestHead& head, const NormalisedTarget& target) const {
    for (const auto& route : ctx_->local_routes) {
      if (route.method == head.method_string && route.pathname == target.pathname) return &route;
    }
    return nullptr;
  }

  // A Home Assistant path Home Assistant does not have (docs/lan-bridge.md#rest-shims): matched
  // on what the relay would forward, so that it is the same request whichever way it is spelled
  // ("/api//config/..." included).
  const LocalRoute* rest_shim(const RequestHead& head, const NormalisedTarget& target) const {
    for (const auto& route : ctx_->rest_shims) {
      if (route.method == head.method_string && route.pathname == target.client_path) {
        return &route;
      }
    }
    return nullptr;
  }

  // Admitted exactly as the relay admits the path it stands in for: hub token, then allow-list.
  asio::awaitable<ExchangeEnd> serve_rest_shim(const LocalRoute& route, RequestHead& head,
                                               const NormalisedTarget& target) {
    if (const RelayAccess access = relay_access(client_, *ctx_, head, target);
        access != RelayAccess::granted) {
      co_return co_await refuse_access(client_, *ctx_, head, target, access);
    }
    co_return co_await run_local(route, head, target, target.client_path);
  }

  asio::awaitable<void> reject_header(beast::error_code ec, int version) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
      co_return;  // the client went away or trickled too slowly: nothing to answer
    }
    if (ec == http::error::header_limit) {
      co_await reply_json(client_, *ctx_, 431, kHeaderTooLargeBody, false, version);
    } else if (ec == http::error::body_limit) {
      co_await reply_json(client_, *ctx_, 413, kBodyTooLargeBody, false, version);
    } else {
      co_await reply_json(client_, *ctx_, 400, kBadRequestBody, false, version);
    }
  }

  void hand_over_to_ws_relay(const RequestHead& head) {
    http::request<http::empty_body> upgrade;
    upgrade.method_string(head.method_string);
    upgrade.target(head.target);
    upgrade.version(head.version);
    for (const auto& field : *head.fields) upgrade.insert(field.name_string, field.value);
    handed_over_ = true;
    ctx_->connections.remove(tracker_id_);
    client_.deadline.cancel();
    start_ws_relay(beast::tcp_stream(std::move(client_.socket)), client_.peer, std::move(upgrade),
                   ctx_);
  }

  // Reads the request body into `out` (a local route's: small, bounded by the route).
  asio::awaitable<beast::error_code> read_body(RequestHead& head, std::string& out) {
    head.eager(true);
    client_.deadline.expires_after(ctx_->config.io_timeout);
    while (!head.is_done()) {
      beast::error_code ec;
      std::size_t used = 0;
      if (!client_.buffer.empty()) {
        head.body->clear();
        used = head.put(asio::buffer(client_.buffer.readable()), ec);
        if (ec && ec != http::error::need_more) co_return ec;
        for (auto piece : *head.body) out.append(piece);
        client_.buffer.consume(used);
      }
      if (head.is_done()) break;
      if (used == 0) {
        auto [rec, n] = co_await read_from_client(client_);
        if ((ec = client_.read_done(rec, n))) {
          co_return ec == asio::error::eof ? beast::error_code(http::error::end_of_stream) : ec;
        }
      }
    }
    client_.deadline.expires_never();
    co_return beast::error_code{};
  }

  static LocalRequest local_request(const RequestHead& head, const NormalisedTarget& target,
                                    std::string pathname) {
    LocalRequest request;
    request.method = std::string(head.method_string);
    request.pathname = std::move(pathname);
    request.query = target.search.empty() ? std::string() : target.search.substr(1);
    for (const auto& field : *head.fields) {
      request.headers.emplace_back(text::lower(field.name_string), std::string(field.value));
    }
    return request;
  }

  asio::awaitable<ExchangeEnd> serve_local(const LocalRoute& route, RequestHead& head,
                                           const NormalisedTarget& target) {
    // Admitted before any body byte is read: a client without the route's credential cannot
    // make us hold its body (the body stays unread, so the connection ends with the refusal).
    if (route.admit) {
      if (auto refusal = route.admit(local_request(head, target, target.pathname))) {
        co_return co_await reply(client_, *ctx_, static_cast<unsigned>(refusal->status),
                                 refusal->content_type, refusal->body, false, head.version,
                                 &refusal->headers);
      }
    }
    co_return co_await run_local(route, head, target, target.pathname);
  }

  // An admitted request to a local route: reads its body (bounded by the route), runs the
  // handler and writes its answer.
  asio::awaitable<ExchangeEnd> run_local(const LocalRoute& route, RequestHead& head,
                                         const NormalisedTarget& target, std::string pathname) {
    LocalRequest request = local_request(head, target, std::move(pathname));
    const int version = head.version;
    const bool keep_alive_requested = head.keep_alive();
    bool close_after = false;
    // Beast checks a declared Content-Length against the body limit when it parses the header,
    // which happened under the bridge-wide limit; a route's smaller limit is checked here.
    if (const auto declared = head.content_length(); declared && *declared > route.max_body_bytes) {
      request.body_too_large = true;
      close_after = true;
    } else if (!head.is_done()) {
      head.body_limit(route.max_body_bytes);
      const auto ec = co_await read_body(head, request.body);
      if (ec == http::error::body_limit) {
        request.body = {};
        request.body_too_large = true;
        close_after = true;
      } else if (ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
          co_return ExchangeEnd::close;
        }
        co_return co_await reply_json(client_, *ctx_, 400, kBadRequestBody, false, version);
      }
    }

    // The handler may answer from any thread; the answer is posted back to our loop, where
    // it wakes us by cancelling the timer. The timer also bounds a handler that never answers.
    struct Pending {
      explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
      std::optional<LocalResponse> response;
      asio::steady_timer timer;
    };
    auto executor = client_.socket.get_executor();
    auto pending = std::make_shared<Pending>(executor);
    pending->timer.expires_after(ctx_->config.upstream_timeout);
    Responder respond = [pending, executor](LocalResponse response) {
      asio::post(executor, [pending, response = std::move(response)]() mutable {
        if (pending->response) return;
        pending->response = std::move(response);
        pending->timer.cancel();
      });
    };
    bool handler_threw = false;
    try {
      route.handler(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      log::error("Unhandled HTTP handler error", e.what());
      handler_threw = true;
    }
    if (handler_threw) {
      co_return co_await reply_json(client_, *ctx_, 500, kInternalErrorBody,
                                    keep_alive_requested && !close_after, version);
    }
    if (!pending->response) co_await pending->timer.async_wait(kAwaitTuple);
    if (!pending->response) {
      co_return co_await reply_json(client_, *ctx_, 500, kInternalErrorBody, false, version);
    }
    const LocalResponse& r = *pending->response;
    co_return co_await reply(client_, *ctx_, static_cast<unsigned>(r.status), r.content_type,
                             r.body, keep_alive_requested && !close_after && !r.close_connection,
                             version, &r.headers);
  }

  ClientConnection client_;
  std::shared_ptr<BridgeContext> ctx_;
  std::uint64_t tracker_id_ = 0;
  bool idle_ = true;
  bool handed_over_ = false;
};

}  // namespace

void start_http_session(tcp::socket socket, const asio::ip::address& peer,
                        std::shared_ptr<BridgeContext> ctx, UpstreamPool& upstream_pool,
                        WaitingExchanges& waiting) {
  std::make_shared<HttpSession>(std::move(socket), peer, std::move(ctx), upstream_pool, waiting)
      ->start();
}

}  // namespace dinodia::ha_bridge::detail
