#include "ha_bridge/detail/reply.hpp"

#include "ha_bridge/detail/write_gathered.hpp"

namespace dinodia::ha_bridge::detail {

asio::awaitable<ExchangeEnd> reply(ClientConnection& client, BridgeContext& ctx, unsigned status,
                                   std::string_view content_type, std::string_view body,
                                   bool keep_alive, int client_version,
                                   const std::vector<std::pair<std::string, std::string>>* extra) {
  keep_alive = keep_alive && !client.stopping && !ctx.connections.stopping();
  auto& head = client.head;
  head.clear();
  append_status_line(head, status, {});
  if (extra) {
    for (const auto& [name, value] : *extra) {
      head.append(name).append(": ").append(value).append("\r\n");
    }
  }
  head.append("Content-Type: ").append(content_type).append("\r\n");
  append_framing(head, Framing{Framing::Kind::length, body.size()});
  append_connection(head, keep_alive, client_version);
  head.append("\r\n");
  co_return co_await send_head_and_body(client, ctx, body, keep_alive);
}

asio::awaitable<ExchangeEnd> send_head_and_body(ClientConnection& client, BridgeContext& ctx,
                                                std::string_view body, bool keep_alive) {
  client.gather.assign({asio::buffer(client.head), asio::buffer(body)});
  client.deadline.expires_after(ctx.config.io_timeout);
  auto [ec, n] = co_await write_gathered(client, client.socket);
  (void)n;
  const bool failed = client.checked(ec).failed();
  client.deadline.expires_never();
  co_return (failed || !keep_alive) ? ExchangeEnd::close : ExchangeEnd::keep_alive;
}

}  // namespace dinodia::ha_bridge::detail
