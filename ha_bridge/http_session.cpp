#include "ha_bridge/http_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <optional>

#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_bridge/detail/ws_relay.hpp"
#include "ha_bridge/http_exchange.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// After an error reply with unread request bytes pending, closing at once would make the kernel
// send RST, and the client could lose our reply. Half-close, then drain briefly.
asio::awaitable<void> lingering_close(ClientConnection& client) {
  beast::error_code ec;
  client.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    client.stream.expires_after(std::chrono::seconds(2));
    std::size_t drained = 0;
    char scratch[4096];
    while (drained < std::size_t{1024} * 1024) {
      auto [rec, n] = co_await client.stream.async_read_some(asio::buffer(scratch), kTuple);
      if (rec) break;
      drained += n;
    }
  }
  client.stream.close();
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<BridgeContext> ctx, UpstreamPool& pool)
      : client_(std::move(socket), pool), ctx_(std::move(ctx)) {}

  void start() {
    auto self = shared_from_this();
    std::weak_ptr<HttpSession> weak = self;
    auto executor = client_.stream.get_executor();
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
        });
    ctx_->stats.connections_active.fetch_add(1);
    asio::co_spawn(
        executor, [self]() { return self->run(); }, asio::detached);
  }

 private:
  void force_close() {
    if (handed_over_) return;
    client_.stream.close();
    if (client_.upstream) client_.upstream->close();
  }
  void begin_stopping() {
    client_.stopping = true;
    if (idle_ && !handed_over_) client_.stream.close();
  }

  asio::awaitable<void> run() {
    try {
      co_await serve();
    } catch (const std::exception& e) {
      log::error("Unhandled HTTP handler error", e.what());
    }
    if (!handed_over_ && client_.stream.socket().is_open()) {
      co_await lingering_close(client_);
    }
    ctx_->connections.remove(tracker_id_);
    ctx_->stats.connections_active.fetch_sub(1);
  }

  asio::awaitable<void> serve() {
    const auto& cfg = ctx_->config;
    while (!client_.stopping && !ctx_->connections.stopping()) {
      // Keep-alive wait for the first byte of the next request, then a separate (shorter)
      // deadline for the whole header so that a slow trickle cannot hold the connection.
      idle_ = true;
      if (client_.buffer.size() == 0) {
        client_.stream.expires_after(cfg.idle_timeout);
        auto [ec, n] =
            co_await client_.stream.async_read_some(client_.buffer.prepare(4096), kTuple);
        if (ec) co_return;
        client_.buffer.commit(n);
      }
      idle_ = false;
      if (client_.stopping) co_return;

      http::request_parser<http::empty_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
      parser.body_limit(cfg.max_body_bytes);
      client_.stream.expires_after(cfg.header_timeout);
      auto [ec, n] =
          co_await http::async_read_header(client_.stream, client_.buffer, parser, kTuple);
      (void)n;
      if (ec) {
        co_await reject_header(ec);
        co_return;
      }
      client_.stream.expires_never();
      ctx_->stats.http_requests.fetch_add(1);
      if (co_await dispatch(parser) == ExchangeEnd::close) co_return;
    }
  }

  asio::awaitable<void> reject_header(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      co_return;  // the client went away or trickled too slowly: nothing to answer
    }
    if (ec == http::error::header_limit) {
      co_await reply_json(client_, *ctx_, 431, std::string(kHeaderTooLargeBody), false);
    } else if (ec == http::error::body_limit) {
      co_await reply_json(client_, *ctx_, 413, std::string(kBodyTooLargeBody), false);
    } else {
      co_await reply_json(client_, *ctx_, 400, std::string(kBadRequestBody), false);
    }
  }

  asio::awaitable<ExchangeEnd> dispatch(http::request_parser<http::empty_body>& parser) {
    const auto& req = parser.get();
    const auto target = normalise_target(req.target());
    if (target) {
      for (const auto& route : ctx_->local_routes) {
        if (route.method == req.method_string() && route.pathname == target->pathname) {
          co_return co_await serve_local(route, parser, *target);
        }
      }
    }
    if (!target) {
      co_return co_await reply_json(client_, *ctx_, 400, std::string(kBadRequestBody), false);
    }
    if (beast::websocket::is_upgrade(req)) {
      // Legacy §7.1: only exactly /api/websocket is upgraded; anything else loses the socket
      // without a response. No auth or allow-list here: the relay authenticates in-band.
      if (target->client_path != "/api/websocket") co_return ExchangeEnd::close;
      handed_over_ = true;
      ctx_->connections.remove(tracker_id_);
      client_.stream.expires_never();
      start_ws_relay(std::move(client_.stream), parser.release(), ctx_);
      co_return ExchangeEnd::close;
    }
    co_return co_await relay_http(client_, *ctx_, parser, *target);
  }

  asio::awaitable<ExchangeEnd> serve_local(const LocalRoute& route,
                                           http::request_parser<http::empty_body>& header,
                                           const NormalisedTarget& target) {
    LocalRequest request;
    request.method = std::string(header.get().method_string());
    request.pathname = target.pathname;
    request.query = target.search.empty() ? std::string() : target.search.substr(1);
    for (const auto& field : header.get()) {
      request.headers.emplace_back(text::lower(field.name_string()), std::string(field.value()));
    }
    const bool keep_alive_requested = header.get().keep_alive();
    bool close_after = false;
    // Beast checks a declared Content-Length against the body limit when it parses the header,
    // which happened under the bridge-wide limit; a route's smaller limit is checked here.
    if (const auto declared = header.content_length();
        declared && *declared > route.max_body_bytes) {
      request.body_too_large = true;
      close_after = true;
    } else if (!header.is_done()) {
      http::request_parser<http::string_body> body_parser{std::move(header)};
      body_parser.body_limit(route.max_body_bytes);
      client_.stream.expires_after(ctx_->config.io_timeout);
      auto [ec, n] = co_await http::async_read(client_.stream, client_.buffer, body_parser, kTuple);
      (void)n;
      client_.stream.expires_never();
      if (ec == http::error::body_limit) {
        request.body_too_large = true;
        close_after = true;
      } else if (ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout) {
          co_return ExchangeEnd::close;
        }
        co_return co_await reply_json(client_, *ctx_, 400, std::string(kBadRequestBody), false);
      } else {
        request.body = std::move(body_parser.get().body());
      }
    }

    // The handler may answer from any thread; the answer is posted back to our strand, where
    // it wakes us by cancelling the timer. The timer also bounds a handler that never answers.
    struct Pending {
      explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
      std::optional<LocalResponse> response;
      asio::steady_timer timer;
    };
    auto executor = client_.stream.get_executor();
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
      co_return co_await reply_json(client_, *ctx_, 500, std::string(kInternalErrorBody),
                                    keep_alive_requested && !close_after);
    }
    if (!pending->response) co_await pending->timer.async_wait(kTuple);
    if (!pending->response) {
      co_return co_await reply_json(client_, *ctx_, 500, std::string(kInternalErrorBody), false);
    }

    LocalResponse& r = *pending->response;
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    for (const auto& [name, value] : r.headers) res.insert(name, value);
    res.set(http::field::content_type, r.content_type);
    res.body() = std::move(r.body);
    const bool keep_alive = keep_alive_requested && !close_after && !r.close_connection &&
                            !client_.stopping && !ctx_->connections.stopping();
    res.keep_alive(keep_alive);
    res.prepare_payload();
    client_.stream.expires_after(ctx_->config.io_timeout);
    auto [wec, wn] = co_await http::async_write(client_.stream, res, kTuple);
    (void)wn;
    client_.stream.expires_never();
    co_return (wec || !keep_alive) ? ExchangeEnd::close : ExchangeEnd::keep_alive;
  }

  ClientConnection client_;
  std::shared_ptr<BridgeContext> ctx_;
  std::uint64_t tracker_id_ = 0;
  bool idle_ = true;
  bool handed_over_ = false;
};

}  // namespace

asio::awaitable<ExchangeEnd> reply_json(ClientConnection& client, BridgeContext& ctx,
                                        unsigned status, std::string body, bool keep_alive) {
  keep_alive = keep_alive && !client.stopping && !ctx.connections.stopping();
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  client.stream.expires_after(ctx.config.io_timeout);
  auto [ec, n] = co_await http::async_write(client.stream, res, kTuple);
  (void)n;
  client.stream.expires_never();
  co_return (ec || !keep_alive) ? ExchangeEnd::close : ExchangeEnd::keep_alive;
}

void start_http_session(tcp::socket socket, std::shared_ptr<BridgeContext> ctx,
                        UpstreamPool& upstream_pool) {
  std::make_shared<HttpSession>(std::move(socket), std::move(ctx), upstream_pool)->start();
}

}  // namespace dinodia::ha_bridge::detail
