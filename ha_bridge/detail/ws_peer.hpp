#pragma once
// Internal to ha_bridge: one side of the WebSocket relay (ws_relay.cpp), the client's or Home
// Assistant's. The relay moves messages the same way in both directions: what one side reads is
// queued on the other, and each side's queue is written one message at a time. Under each Beast
// stream, a layer that lets the frames waiting for one socket share a write
// (coalescing_stream.hpp).
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <string>

#include "ha_bridge/detail/coalescing_stream.hpp"

namespace dinodia::ha_bridge::detail {

struct WsPeer {
  // A message waiting to be written: data, or the close frame that ends the side.
  struct Outgoing {
    std::string data;
    bool binary = false;
    bool is_close = false;
    boost::beast::websocket::close_reason reason;
  };

  explicit WsPeer(boost::beast::tcp_stream stream)
      : ws(std::move(stream)), keep_alive_timer(ws.get_executor()) {}

  // The message just read, taken out of the read buffer.
  std::string take_message();
  void queue_message(std::string data, bool binary);
  void queue_close(boost::beast::websocket::close_reason reason);
  // The front message was written (or failed): off the queue.
  void pop_sent();
  // Drops everything not yet handed to Beast, except the message in flight when `keep_front`.
  void drop_queue(bool keep_front = false);
  // Closes the socket at once, without a close handshake.
  void close_socket();

  // The keep-alive, as Beast's keep_alive_pings did it (a ping once the peer has been silent for
  // an interval; timed out when it is still silent an interval after the ping), but without
  // Beast's idle timer, which re-arms on every message read. The relay's timer looks at `next`.
  enum class Idle { wait, ping, timed_out };
  Idle check_idle(std::chrono::steady_clock::time_point now,
                  std::chrono::steady_clock::duration interval,
                  std::chrono::steady_clock::time_point& next);

  boost::beast::websocket::stream<CoalescingStream> ws;
  boost::beast::flat_buffer buffer;
  std::deque<Outgoing> queue;
  std::size_t queued_bytes = 0;
  bool open = false;           // the handshake is done and no read has failed yet
  bool reading = false;        // a read is pending
  bool writing = false;        // a write or the close handshake is pending
  bool close_started = false;  // the close frame is queued (or the socket closed): nothing more
  bool aborted = false;        // closed past its queue (a slow client): nothing else goes out
  boost::asio::steady_timer keep_alive_timer;
  std::chrono::steady_clock::time_point pinged_at;
  bool pinged = false;     // a keep-alive ping went out and nothing was heard since
  bool timed_out = false;  // closed by the keep-alive: what the pending read reports
};

}  // namespace dinodia::ha_bridge::detail
