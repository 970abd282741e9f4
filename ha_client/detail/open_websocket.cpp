#include "ha_client/detail/open_websocket.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace dinodia::ha_client::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kIdleTimeout = std::chrono::seconds(60);  // pings keep a quiet socket alive
constexpr std::size_t kMaxMessageBytes = std::size_t{64} * 1024 * 1024;
}  // namespace

void open_websocket(const Strand& strand, const HaClientConfig& config,
                    std::function<void(std::string, std::shared_ptr<WsStream>)> done) {
  auto resolver = std::make_shared<tcp::resolver>(strand);
  auto ws = std::make_shared<WsStream>(strand);
  auto res = std::make_shared<websocket::response_type>();
  const std::string host = config.upstream.host;
  const std::string host_header = config.upstream.host_header();
  const std::string target = config.upstream.core_path("/api/websocket");
  const std::string token = config.supervisor_token;
  const auto connect_timeout = config.connect_timeout;
  resolver->async_resolve(
      host, std::to_string(config.upstream.port),
      [resolver, ws, res, host_header, target, token, connect_timeout, done = std::move(done)](
          beast::error_code ec, const tcp::resolver::results_type& results) {
        if (ec) return done(ec.message(), nullptr);
        beast::get_lowest_layer(*ws).expires_after(connect_timeout);
        beast::get_lowest_layer(*ws).async_connect(results, [ws, res, host_header, target, token,
                                                             connect_timeout,
                                                             done](beast::error_code cec,
                                                                   const tcp::endpoint&) {
          if (cec) {
            return done(cec == beast::error::timeout ? "ha_ws_timeout" : cec.message(), nullptr);
          }
          beast::get_lowest_layer(*ws).expires_never();
          websocket::stream_base::timeout t{};
          t.handshake_timeout = connect_timeout;
          t.idle_timeout = kIdleTimeout;
          t.keep_alive_pings = true;
          ws->set_option(t);
          ws->read_message_max(kMaxMessageBytes);
          ws->set_option(websocket::stream_base::decorator([token](websocket::request_type& r) {
            if (!token.empty()) r.set(http::field::authorization, "Bearer " + token);
            r.set(http::field::user_agent, "dinodia-hub-agent");
          }));
          ws->async_handshake(*res, host_header, target, [ws, res, done](beast::error_code hec) {
            if (hec == websocket::error::upgrade_declined) {
              return done("Unexpected server response: " + std::to_string(res->result_int()),
                          nullptr);
            }
            if (hec) {
              return done(hec == beast::error::timeout ? "ha_ws_timeout" : hec.message(), nullptr);
            }
            done("", ws);
          });
        });
      });
}

void close_websocket(WsStream& ws) {
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws).socket().close(ignored);
}

}  // namespace dinodia::ha_client::detail
