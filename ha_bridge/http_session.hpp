#pragma once
// Internal to ha_bridge: one HTTP/1.1 session per accepted client connection (keep-alive loop,
// dispatch to local routes / WebSocket relay / HTTP relay). Each session runs on its own strand.
#include <memory>

#include "ha_bridge/detail/context.hpp"

namespace dinodia::ha_bridge::detail {

void start_http_session(tcp::socket socket, std::shared_ptr<BridgeContext> ctx);

}  // namespace dinodia::ha_bridge::detail
