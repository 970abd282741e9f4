#include "ha_bridge/detail/coalescing_stream.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/websocket/detail/mask.hpp>
#include <boost/beast/websocket/detail/prng.hpp>
#include <cstdint>

namespace dinodia::ha_bridge::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

// Runs `handler(args...)` from the loop, never from inside the call that started the operation.
template <class Handler, class... Args>
void complete_later(const CoalescingStream::executor_type& executor, Handler handler,
                    Args... args) {
  asio::post(executor,
             [handler = std::move(handler), args...]() mutable { std::move(handler)(args...); });
}

// Stores `from` in `to`. Not `to = std::move(from)`: Boost 1.81's move assignment of
// any_completion_handler copies from an lvalue, which wraps the handler in itself without end.
template <class Handler>
void store(Handler& to, Handler from) {
  Handler(std::move(from)).swap(to);
}

}  // namespace

void CoalescingStream::accepted(WriteHandler handler, std::size_t size) {
  State& state = *state_;
  if (state.pending.size() > kHoldBytes) {
    // The socket is behind: this write completes once what is before it has gone out.
    store(state.held, std::move(handler));
    state.held_size = size;
  } else {
    completed(std::move(handler), beast::error_code{}, size);
  }
  if (!state.writing) flush(state_);
}

void CoalescingStream::completed(WriteHandler handler, beast::error_code ec, std::size_t size) {
  complete_later(next_.get_executor(), std::move(handler), ec, size);
}

void CoalescingStream::async_drain(DoneHandler done) {
  State& state = *state_;
  if (state.failed || (state.pending.empty() && !state.writing)) {
    complete_later(next_.get_executor(), std::move(done), state.failed);
    return;
  }
  store(state.drained, std::move(done));
}

void CoalescingStream::write_message(bool binary, std::string_view payload, bool masked) {
  State& state = *state_;
  if (state.failed) return;  // the pending read reports the broken connection
  // RFC 6455 section 5.2: FIN and the opcode; the mask bit and the length in 7, 7+16 or 7+64 bits;
  // the masking key.
  unsigned char header[14];
  std::size_t at = 0;
  header[at++] = static_cast<unsigned char>(0x80 | (binary ? 0x2 : 0x1));
  const unsigned char mask_bit = masked ? 0x80 : 0x00;
  const std::uint64_t size = payload.size();
  if (size <= 125) {
    header[at++] = static_cast<unsigned char>(mask_bit | size);
  } else if (size <= 0xffff) {
    header[at++] = static_cast<unsigned char>(mask_bit | 126);
    header[at++] = static_cast<unsigned char>(size >> 8);
    header[at++] = static_cast<unsigned char>(size);
  } else {
    header[at++] = static_cast<unsigned char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[at++] = static_cast<unsigned char>(size >> shift);
    }
  }
  std::uint32_t key = 0;
  if (masked) {
    // As Beast's create_mask: a non-zero key from its secure generator, sent little-endian.
    auto generator = beast::websocket::detail::make_prng(true);
    while (key == 0) key = generator();
    for (int i = 0; i < 4; ++i) header[at++] = static_cast<unsigned char>(key >> (8 * i));
  }
  std::string& pending = state.pending;
  const std::size_t start = pending.size() + at;
  pending.append(reinterpret_cast<const char*>(header), at);
  pending.append(payload);
  if (masked) {
    beast::websocket::detail::prepared_key prepared;
    beast::websocket::detail::prepare_key(prepared, key);
    beast::websocket::detail::mask_inplace(
        asio::mutable_buffer(pending.data() + start, payload.size()), prepared);
  }
  // Messages that the loop has already queued for this socket (the rest of what one receive
  // brought) join before the send.
  if (state.send_posted) {
    state.more_since_post = true;
  } else if (!state.writing) {
    post_send(state_);
  }
}

void CoalescingStream::post_send(const std::shared_ptr<State>& state) {
  state->send_posted = true;
  state->more_since_post = false;
  asio::post(state->stream->get_executor(), [state] {
    if (state->stream == nullptr) return;
    // The first turn lets the messages queued behind this one run; later turns go on while
    // they keep adding.
    if ((state->deferrals == 0 || state->more_since_post) && state->deferrals < kMaxDeferrals &&
        state->pending.size() <= kHoldBytes) {
      ++state->deferrals;
      post_send(state);
      return;
    }
    state->send_posted = false;
    state->deferrals = 0;
    if (!state->writing) send_pending(state);
  });
}

void CoalescingStream::send_pending(const std::shared_ptr<State>& state) {
  if (state->pending.empty() || state->failed) return;
  beast::error_code ec;
  const std::size_t sent = send_now(*state->stream, asio::buffer(state->pending), ec);
  if (ec) {
    state->failed = ec;
    state->pending.clear();
  } else if (sent == state->pending.size()) {
    state->pending.clear();
  } else {
    state->pending.erase(0, sent);
    flush(state);
    return;
  }
  settle(*state);
}

void CoalescingStream::async_wait_room(DoneHandler done) {
  State& state = *state_;
  if (state.failed || has_room()) {
    complete_later(next_.get_executor(), std::move(done), state.failed);
    return;
  }
  store(state.room, std::move(done));
}

void CoalescingStream::flush(const std::shared_ptr<State>& state) {
  if (state->writing || state->pending.empty() || state->failed) return;
  state->writing = true;
  state->sending.swap(state->pending);
  asio::async_write(state->stream->socket(), asio::buffer(state->sending),
                    [state](beast::error_code ec, std::size_t) { on_flushed(state, ec); });
  // What the flush took leaves room: a write held back may complete now.
  settle(*state);
}

void CoalescingStream::on_flushed(const std::shared_ptr<State>& state, beast::error_code ec) {
  state->writing = false;
  state->sending.clear();
  if (state->sending.capacity() > kKeepCapacity) std::string().swap(state->sending);
  if (state->stream == nullptr) return;
  if (ec) {
    state->failed = ec;
    state->pending.clear();
  } else if (!state->pending.empty()) {
    flush(state);
    return;
  }
  settle(*state);
}

void CoalescingStream::settle(State& state) {
  const auto executor = state.stream->get_executor();
  if (state.held && (state.failed || state.pending.size() <= kHoldBytes)) {
    const std::size_t size = state.failed ? 0 : state.held_size;
    complete_later(executor, std::move(state.held), state.failed, size);
  }
  if (state.room && (state.failed || state.pending.size() <= kHoldBytes)) {
    complete_later(executor, std::move(state.room), state.failed);
  }
  if (state.drained && (state.failed || (state.pending.empty() && !state.writing))) {
    complete_later(executor, std::move(state.drained), state.failed);
  }
  if (state.pending.empty() && state.pending.capacity() > kKeepCapacity) {
    std::string().swap(state.pending);
  }
}

void teardown(beast::role_type role, CoalescingStream& stream, beast::error_code& ec) {
  using beast::websocket::teardown;
  teardown(role, stream.next_layer().socket(), ec);
}

}  // namespace dinodia::ha_bridge::detail
