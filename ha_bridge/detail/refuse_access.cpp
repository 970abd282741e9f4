#include "ha_bridge/detail/refuse_access.hpp"

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "ha_bridge/detail/reply.hpp"

namespace dinodia::ha_bridge::detail {

asio::awaitable<ExchangeEnd> refuse_access(ClientConnection& client, BridgeContext& ctx,
                                           const RequestHead& head, const NormalisedTarget& target,
                                           RelayAccess refusal) {
  const bool keep_alive = head.keep_alive() && head.is_done();
  const int version = head.version;
  if (refusal == RelayAccess::no_hub_token) {
    // Counts the failure against the client's address; only a failing client waits here, on a
    // timer of its own, not the connection's deadline.
    if (const auto pause = ctx.auth_failures.failed(client.peer); pause.count() > 0) {
      asio::steady_timer timer(client.socket.get_executor(), pause);
      co_await timer.async_wait(kAwaitTuple);
    }
    co_return co_await reply_json(client, ctx, 401, kUnauthorizedBody,
                                  client.authenticated && keep_alive, version);
  }
  const nlohmann::json body = {{"error", "Path not allowed."}, {"path", target.client_path}};
  co_return co_await reply_json(client, ctx, 403, body.dump(), keep_alive, version);
}

}  // namespace dinodia::ha_bridge::detail
