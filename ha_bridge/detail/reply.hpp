#pragma once
// Internal to ha_bridge: the answers the HTTP path makes itself, instead of relaying Home
// Assistant's (refusals, errors, the agent's own routes).
#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ha_bridge/detail/client_connection.hpp"

namespace dinodia::ha_bridge::detail {

// Writes a reply the agent makes itself (explicit Content-Length), with `extra` fields if given.
// Returns close when the connection must end (the client asked, an error, shutdown, or
// `keep_alive` false). Lazily started like every awaitable: what the views point to must live
// until the reply has been written.
asio::awaitable<ExchangeEnd> reply(
    ClientConnection& client, BridgeContext& ctx, unsigned status, std::string_view content_type,
    std::string_view body, bool keep_alive, int client_version,
    const std::vector<std::pair<std::string, std::string>>* extra = nullptr);
// Writes `client.head` (already rendered) and `body` to the client under the io deadline; close
// when that failed or `keep_alive` is false.
asio::awaitable<ExchangeEnd> send_head_and_body(ClientConnection& client, BridgeContext& ctx,
                                                std::string_view body, bool keep_alive);
inline asio::awaitable<ExchangeEnd> reply_json(ClientConnection& client, BridgeContext& ctx,
                                               unsigned status, std::string_view body,
                                               bool keep_alive, int client_version) {
  return reply(client, ctx, status, "application/json", body, keep_alive, client_version);
}

// Our JSON bodies (as the legacy agent words them, docs/compatibility.md, plus the
// hostile-input answers).
inline constexpr std::string_view kBadRequestBody = R"({"error":"Bad request."})";
inline constexpr std::string_view kUnauthorizedBody = R"({"error":"Unauthorized."})";
inline constexpr std::string_view kUpstreamErrorBody = R"({"error":"Upstream error."})";
inline constexpr std::string_view kInternalErrorBody = R"({"error":"Internal error."})";
inline constexpr std::string_view kHeaderTooLargeBody = R"({"error":"Request header too large."})";
inline constexpr std::string_view kBodyTooLargeBody = R"({"error":"Request body too large."})";

}  // namespace dinodia::ha_bridge::detail
