#pragma once
// Internal to ha_bridge: the WebSocket relay's connection to Home Assistant Core, through the
// Supervisor's proxy. A relay makes one per credential it tries: Core disconnects after
// auth_invalid, so the next credential needs a new connection (ws_credentials.hpp).
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/detail/ws_peer.hpp"

namespace dinodia::ha_bridge::detail {

struct WsUpstream : WsPeer {
  explicit WsUpstream(const asio::any_io_executor& executor)
      : WsPeer(beast::tcp_stream(executor)) {}
  bool needs_auth = false;  // Core's auth_required has come
  bool auth_sent = false;
};

// Resolves Core (unless `ctx` knows its address), connects under the connect timeout and
// upgrades with the Supervisor token, Beast's pings and the relay's size limit. `wanted` is
// asked before each step: once false, the attempt stops quietly (the relay replaced the
// connection or is ending). `done(ec, stage)` gets the outcome: the failed step ("resolve",
// "connect", "handshake") and its error, or no error once the upgrade is done.
// The "type" of a text frame from Core (its login messages: auth_required, auth_ok,
// auth_invalid); empty when the frame is not a JSON object with a string type.
std::string core_message_type(std::string_view frame);

void open_ws_upstream(const std::shared_ptr<WsUpstream>& up, const BridgeContext& ctx,
                      tcp::resolver& resolver, std::function<bool()> wanted,
                      std::function<void(beast::error_code, const char* stage)> done);

}  // namespace dinodia::ha_bridge::detail
