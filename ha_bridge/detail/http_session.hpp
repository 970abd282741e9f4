#pragma once
// Internal to ha_bridge: one HTTP/1.1 session per accepted client connection (keep-alive loop,
// dispatch to local routes / WebSocket relay / HTTP relay). A session runs on the single-threaded
// loop of the worker that accepted it and relays through that worker's upstream pool; the
// worker's WaitingExchanges watches its clients while Home Assistant is slow to answer.
#include <memory>

#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/detail/waiting_exchanges.hpp"

namespace dinodia::ha_bridge::detail {

// `peer` is the client's address, as the acceptor admitted it.
void start_http_session(tcp::socket socket, const asio::ip::address& peer,
                        std::shared_ptr<BridgeContext> ctx, UpstreamPool& upstream_pool,
                        WaitingExchanges& waiting);

}  // namespace dinodia::ha_bridge::detail
