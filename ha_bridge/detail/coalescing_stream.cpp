#include "ha_bridge/detail/coalescing_stream.hpp"

#include <boost/asio/write.hpp>

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
void store(Handler& to, Handler&& from) {
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
