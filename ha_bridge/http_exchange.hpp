#pragma once
// Internal to ha_bridge: what the HTTP session and the HTTP relay share about one client
// connection, and the small replies both send. Coroutine based (asio::awaitable); everything
// here runs on the session's strand.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <string>
#include <string_view>

#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

struct ClientConnection {
  ClientConnection(tcp::socket socket, UpstreamPool& pool)
      : stream(std::move(socket)), upstream_pool(pool) {}
  beast::tcp_stream stream;
  UpstreamPool& upstream_pool;  // the worker's: same event loop as this connection
  beast::flat_buffer buffer;    // bytes read from the client but not parsed yet
  bool stopping = false;        // shutdown began: answer the current request, then close
  // The upstream connection of the exchange in flight, so that a forced close reaches it.
  beast::tcp_stream* upstream = nullptr;
};

enum class ExchangeEnd { keep_alive, close };

// Writes a JSON reply the agent generates itself (compact body, explicit Content-Length).
// Returns close when the connection must end (the client asked, an error, or `close`).
asio::awaitable<ExchangeEnd> reply_json(ClientConnection& client, BridgeContext& ctx,
                                        unsigned status, std::string body, bool keep_alive);

// Relays one authenticated, allowed request to Home Assistant Core. Checks auth and the
// allow-list first. `header` has read the request header; the body (if any) is still unread.
asio::awaitable<ExchangeEnd> relay_http(ClientConnection& client, BridgeContext& ctx,
                                        http::request_parser<http::empty_body>& header,
                                        const NormalisedTarget& target);

// Our JSON bodies (legacy-agent.md §6.2, plus the hostile-input answers).
inline constexpr std::string_view kBadRequestBody = R"({"error":"Bad request."})";
inline constexpr std::string_view kUnauthorizedBody = R"({"error":"Unauthorized."})";
inline constexpr std::string_view kUpstreamErrorBody = R"({"error":"Upstream error."})";
inline constexpr std::string_view kInternalErrorBody = R"({"error":"Internal error."})";
inline constexpr std::string_view kHeaderTooLargeBody = R"({"error":"Request header too large."})";
inline constexpr std::string_view kBodyTooLargeBody = R"({"error":"Request body too large."})";

}  // namespace dinodia::ha_bridge::detail
