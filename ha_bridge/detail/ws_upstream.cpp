#include "ha_bridge/detail/ws_upstream.hpp"

#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace dinodia::ha_bridge::detail {
namespace {

namespace websocket = beast::websocket;
using Done = std::function<void(beast::error_code, const char*)>;

void upgrade(const std::shared_ptr<WsUpstream>& up, const BridgeContext& ctx, Done done) {
  // Messages are relayed one by one as they come: Nagle would hold one back until Core
  // acknowledged the previous one (up to its 40 ms delayed ACK).
  beast::error_code ignored;
  beast::get_lowest_layer(up->ws).socket().set_option(tcp::no_delay(true), ignored);
  const auto& cfg = ctx.config;
  beast::get_lowest_layer(up->ws).expires_never();  // the websocket timeouts take over
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = cfg.upstream_connect_timeout;
  // Pings come from the relay's keep-alive (ws_relay.cpp, arm_keep_alive).
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  up->ws.set_option(timeouts);
  up->ws.read_message_max(cfg.ws_max_message_from_upstream);
  up->ws.set_option(websocket::stream_base::decorator(
      [token = cfg.supervisor_token](websocket::request_type& req) {
        if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
        req.set(http::field::user_agent, "dinodia-hub-agent");
      }));
  up->ws.async_handshake(
      cfg.upstream.host_header(), cfg.upstream.core_path("/api/websocket"),
      [up, done = std::move(done)](beast::error_code ec) { done(ec, "handshake"); });
}

void connect(const std::shared_ptr<WsUpstream>& up, const BridgeContext& ctx,
             const tcp::endpoint& endpoint, std::function<bool()> wanted, Done done) {
  if (!wanted()) return;
  auto& stream = beast::get_lowest_layer(up->ws);
  stream.expires_after(ctx.config.upstream_connect_timeout);
  // `ctx` lives as long as the relay, which `done` keeps alive.
  stream.async_connect(endpoint, [up, &ctx, wanted = std::move(wanted),
                                  done = std::move(done)](beast::error_code ec) mutable {
    if (ec) return done(ec, "connect");
    if (!wanted()) return;
    upgrade(up, ctx, std::move(done));
  });
}

}  // namespace

std::string core_message_type(std::string_view frame) {
  const auto parsed = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return {};
  const auto it = parsed.find("type");
  if (it == parsed.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

void open_ws_upstream(const std::shared_ptr<WsUpstream>& up, const BridgeContext& ctx,
                      tcp::resolver& resolver, std::function<bool()> wanted,
                      std::function<void(beast::error_code, const char* stage)> done) {
  if (ctx.upstream_endpoint.port() != 0) {
    connect(up, ctx, ctx.upstream_endpoint, std::move(wanted), std::move(done));
    return;
  }
  const auto& target = ctx.config.upstream;
  resolver.async_resolve(
      target.host, std::to_string(target.port),
      [up, &ctx, wanted = std::move(wanted), done = std::move(done)](
          beast::error_code ec, const tcp::resolver::results_type& results) mutable {
        if (!wanted()) return;
        if (ec || results.empty()) {
          return done(ec ? ec : asio::error::host_not_found, "resolve");
        }
        connect(up, ctx, results.begin()->endpoint(), std::move(wanted), std::move(done));
      });
}

}  // namespace dinodia::ha_bridge::detail
