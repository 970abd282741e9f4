#pragma once
// Internal to ha_client: opening a WebSocket to Home Assistant through the Supervisor's Core
// proxy, shared by the tracker connection and the one-shot command. Includes Beast, so only
// ha_client's own .cpp files include it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <functional>
#include <memory>
#include <string>

#include "ha_client/config.hpp"

namespace dinodia::ha_client::detail {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using WsStream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

// Resolve, connect and upgrade; `done(error, stream)`. The HTTP status of a declined upgrade
// becomes "Unexpected server response: <status>" (the Supervisor answers 502 while Core
// starts), as the legacy agent's `ws` library reports it.
void open_websocket(const Strand& strand, const HaClientConfig& config,
                    std::function<void(std::string, std::shared_ptr<WsStream>)> done);

// Shuts the stream's socket down and closes it, without a close handshake.
void close_websocket(WsStream& ws);

}  // namespace dinodia::ha_client::detail
