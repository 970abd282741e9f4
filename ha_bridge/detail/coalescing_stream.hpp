#pragma once
// Internal to ha_bridge: the TCP layer under each of the WebSocket relay's Beast streams
// (ws_peer.hpp), in place of Beast's tcp_stream on the hot path (docs/lan-bridge.md#throughput).
//
// The relay's messages under kDirectBytes are framed here (write_message), as Beast would frame
// them, without Beast's asynchronous write: every message waiting goes out in the relay's one
// call. Bytes go to the socket at once with one non-blocking send when nothing is waiting. Only
// when the socket cannot take them all (the peer reads slower than messages come) does the rest
// wait in a buffer, and what comes meanwhile joins it and goes out with it in one write. Each
// message stays its own WebSocket frame, byte for byte; only system calls are shared. Beast's
// own writes (handshake, control frames, messages of kDirectBytes or more) pass through the same
// order (async_write_some).
//
// Bounds: while more than kHoldBytes wait, has_room() is false and a write of Beast's completes
// only once the socket has taken what was before it, so a client that does not read still fills
// the relay's bounded queue behind it. A frame of kDirectBytes or more from Beast with nothing
// waiting is handed to the socket's own asynchronous write, without a copy.
//
// It also notes when Beast last asked for more bytes, which is when the peer last sent some: the
// relay's keep-alive reads it instead of Beast's idle timer, which re-arms on every message
// read (ws_peer.hpp).
//
// Beast serialises its writes on a stream (its write lock), so at most one of them is pending
// here at a time. Close: Beast's teardown waits until the buffer is out, so the close frame is
// sent before the socket is shut down.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace dinodia::ha_bridge::detail {

class CoalescingStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using WriteHandler =
      boost::asio::any_completion_handler<void(boost::beast::error_code, std::size_t)>;
  using DoneHandler = boost::asio::any_completion_handler<void(boost::beast::error_code)>;

  static constexpr std::size_t kHoldBytes = std::size_t{64} * 1024;
  static constexpr std::size_t kDirectBytes = std::size_t{16} * 1024;
  // How many more turns of the loop a send of gathered messages waits while more keep coming.
  static constexpr int kMaxDeferrals = 16;
  // Capacity kept between bursts; above it a drained buffer is given back.
  static constexpr std::size_t kKeepCapacity = std::size_t{4} * 1024;

  explicit CoalescingStream(boost::beast::tcp_stream stream)
      : next_(std::move(stream)), state_(std::make_shared<State>()) {
    state_->stream = &next_;
  }
  CoalescingStream(CoalescingStream&&) = delete;
  CoalescingStream& operator=(CoalescingStream&&) = delete;
  ~CoalescingStream() { state_->stream = nullptr; }

  executor_type get_executor() noexcept { return next_.get_executor(); }
  boost::beast::tcp_stream& next_layer() noexcept { return next_; }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    last_read_start_ = std::chrono::steady_clock::now();
    return next_.socket().async_read_some(buffers, std::forward<Token>(token));
  }

  // When Beast last asked the socket for bytes: the peer has been silent since at most then.
  std::chrono::steady_clock::time_point last_read_start() const { return last_read_start_; }

  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          const std::size_t size = boost::asio::buffer_size(b);
          if (state_->failed) {
            completed(WriteHandler(std::move(handler)), state_->failed, 0);
            return;
          }
          if (!idle()) {
            keep(b, 0, size);
            accepted(WriteHandler(std::move(handler)), size);
            return;
          }
          if (size >= kDirectBytes) {
            next_.socket().async_write_some(b, std::move(handler));
            return;
          }
          boost::beast::error_code ec;
          const std::size_t sent = send_now(next_, b, ec);
          if (ec) {
            completed(WriteHandler(std::move(handler)), ec, 0);
            return;
          }
          if (sent < size) keep(b, sent, size);
          accepted(WriteHandler(std::move(handler)), size);
        },
        token, buffers);
  }

  // Calls `done` once everything accepted has been handed to the socket (or writing failed).
  void async_drain(DoneHandler done);

  // Sends one whole message as a single final frame without extension bits, masked with a fresh
  // key from Beast's generator when `masked` (the relay is Core's client): the frame Beast
  // writes for it, without Beast's write operation. Only while Beast has no data write of its
  // own in progress on this stream (its control frames are always taken whole, so they never
  // interleave with this).
  void write_message(bool binary, std::string_view payload, bool masked);
  // False while kHoldBytes or more wait: then async_wait_room says when to go on.
  bool has_room() const { return state_->pending.size() <= kHoldBytes; }
  void async_wait_room(DoneHandler done);

 private:
  struct State {
    boost::beast::tcp_stream* stream = nullptr;  // null once the layer is gone
    std::string pending;                         // accepted, not yet handed to the socket
    std::string sending;                         // the write in flight
    bool writing = false;
    bool send_posted = false;  // a send of what write_message gathered is on the loop
    bool more_since_post = false;
    int deferrals = 0;
    boost::beast::error_code failed;
    WriteHandler held;  // a write accepted beyond kHoldBytes, completed after the next flush
    std::size_t held_size = 0;
    DoneHandler room;  // async_wait_room's
    DoneHandler drained;
  };

  bool idle() const { return state_->pending.empty() && !state_->writing; }
  // One non-blocking send on `socket`; how much it took (0 when full: would_block is no error).
  template <class ConstBufferSequence>
  static std::size_t send_now(boost::beast::tcp_stream& stream, const ConstBufferSequence& buffers,
                              boost::beast::error_code& ec) {
    auto& socket = stream.socket();
    if (!socket.non_blocking()) socket.non_blocking(true, ec);
    const std::size_t sent = ec ? 0 : socket.write_some(buffers, ec);
    if (ec == boost::asio::error::would_block) ec = {};
    return sent;
  }
  // Appends bytes [from, to) of `buffers` to what waits.
  template <class ConstBufferSequence>
  void keep(const ConstBufferSequence& buffers, std::size_t from, std::size_t to) {
    std::string& pending = state_->pending;
    const std::size_t at = pending.size();
    pending.resize(at + (to - from));
    boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
    rest.consume(from);
    boost::asio::buffer_copy(boost::asio::buffer(pending.data() + at, to - from), rest);
  }
  void accepted(WriteHandler handler, std::size_t size);
  // The send of what write_message gathered, after the loop has run what was queued.
  static void post_send(const std::shared_ptr<State>& state);
  // One non-blocking send of what waits; the rest goes out asynchronously.
  static void send_pending(const std::shared_ptr<State>& state);
  void completed(WriteHandler handler, boost::beast::error_code ec, std::size_t size);
  static void flush(const std::shared_ptr<State>& state);
  static void on_flushed(const std::shared_ptr<State>& state, boost::beast::error_code ec);
  static void settle(State& state);

  boost::beast::tcp_stream next_;
  std::shared_ptr<State> state_;
  std::chrono::steady_clock::time_point last_read_start_ = std::chrono::steady_clock::now();
};

// Beast's close handshake ends with a teardown of the layer below; the buffered close frame
// goes out first.
void teardown(boost::beast::role_type role, CoalescingStream& stream, boost::beast::error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& stream,
                    TeardownHandler&& handler) {
  stream.async_drain([role, &stream, handler = std::forward<TeardownHandler>(handler)](
                         boost::beast::error_code ec) mutable {
    if (ec) {
      std::move(handler)(ec);
      return;
    }
    using boost::beast::websocket::async_teardown;
    async_teardown(role, stream.next_layer().socket(), std::move(handler));
  });
}

}  // namespace dinodia::ha_bridge::detail
