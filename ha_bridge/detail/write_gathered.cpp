#include "ha_bridge/detail/write_gathered.hpp"

#include <boost/asio/write.hpp>
#include <vector>

namespace dinodia::ha_bridge::detail {

namespace {
// Drops the first `n` bytes from a gathered write.
void drop_front(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  auto it = buffers.begin();
  while (it != buffers.end() && n >= it->size()) {
    n -= it->size();
    ++it;
  }
  buffers.erase(buffers.begin(), it);
  if (n > 0 && !buffers.empty()) buffers.front() += n;
}
}  // namespace

asio::awaitable<std::tuple<beast::error_code, std::size_t>> write_gathered(ClientConnection& client,
                                                                           tcp::socket& socket) {
  auto& gather = client.gather;
  const std::size_t total = asio::buffer_size(gather);
  beast::error_code ec;
  // Non-blocking for our own writes too (Asio's asynchronous operations already are): a full
  // send buffer must return at once, never block the worker's loop.
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  std::size_t written = 0;
  if (!ec) written = socket.write_some(gather, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (ec || written == total) co_return std::tuple{ec, written};
  drop_front(gather, written);
  auto [rest_ec, rest] = co_await asio::async_write(socket, gather, kAwaitTuple);
  co_return std::tuple{rest_ec, written + rest};
}

}  // namespace dinodia::ha_bridge::detail
