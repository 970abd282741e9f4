#include "ha_bridge/detail/ws_peer.hpp"

#include <boost/beast/core/buffers_to_string.hpp>

namespace dinodia::ha_bridge::detail {
namespace {
// A read buffer that grew for one huge message is given back once it was this big.
constexpr std::size_t kShrinkBufferAbove = std::size_t{1024} * 1024;
}  // namespace

std::string WsPeer::take_message() {
  std::string data = boost::beast::buffers_to_string(buffer.data());
  buffer.consume(buffer.size());
  if (buffer.capacity() > kShrinkBufferAbove) buffer.shrink_to_fit();
  return data;
}

void WsPeer::queue_message(std::string data, bool binary) {
  queued_bytes += data.size();
  queue.push_back({std::move(data), binary, false, {}});
}

void WsPeer::queue_close(boost::beast::websocket::close_reason reason) {
  queue.push_back({{}, false, true, std::move(reason)});
}

void WsPeer::pop_sent() {
  if (queue.empty()) return;
  queued_bytes -= queue.front().data.size();
  queue.pop_front();
}

void WsPeer::drop_queue(bool keep_front) {
  if (keep_front && !queue.empty()) {
    queue.erase(queue.begin() + 1, queue.end());
    queued_bytes = queue.front().data.size();
  } else {
    queue.clear();
    queued_bytes = 0;
  }
}

WsPeer::Idle WsPeer::check_idle(std::chrono::steady_clock::time_point now,
                                std::chrono::steady_clock::duration interval,
                                std::chrono::steady_clock::time_point& next) {
  const auto heard = ws.next_layer().last_read_start();
  if (pinged && heard > pinged_at) pinged = false;
  if (heard + interval > now) {
    next = heard + interval;
    return Idle::wait;
  }
  if (pinged) return Idle::timed_out;
  pinged = true;
  pinged_at = now;
  next = now + interval;
  return Idle::ping;
}

void WsPeer::close_socket() {
  boost::beast::error_code ignored;
  boost::beast::get_lowest_layer(ws).socket().close(ignored);
}

}  // namespace dinodia::ha_bridge::detail
