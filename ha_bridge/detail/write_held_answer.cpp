#include "ha_bridge/detail/write_held_answer.hpp"

#include "ha_bridge/detail/reply.hpp"

namespace dinodia::ha_bridge::detail {

asio::awaitable<ExchangeEnd> write_held_answer(ClientConnection& client, BridgeContext& ctx,
                                               const HeldAnswer& answer, bool keep_alive,
                                               int client_version) {
  // As relay_response decides it for a relayed answer of known length.
  keep_alive = keep_alive && !client.stopping && !ctx.connections.stopping();
  write_response_head(client.head, answer.status, answer.reason, answer.fields,
                      Framing{Framing::Kind::length, answer.body.size()}, keep_alive,
                      client_version);
  co_return co_await send_head_and_body(client, ctx, answer.body, keep_alive);
}

}  // namespace dinodia::ha_bridge::detail
