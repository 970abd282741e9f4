#include "ha_bridge/detail/client_watch.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dinodia::ha_bridge::detail {
namespace {

// It is a plain read, not a readiness wait: Asio's reactor has the socket registered already, so
// arming it costs no epoll_ctl.
void arm_watch(ClientConnection& client, std::shared_ptr<void> keep_alive) {
  client.socket.async_read_some(
      client.buffer.prepare(1024),
      [&client, keep_alive](boost::system::error_code ec, std::size_t n) mutable {
        auto& watch = client.watch;
        if (!ec) {
          client.buffer.commit(n);
          if (!watch.stopping && client.buffer.size() <= watch.max_buffered) {
            arm_watch(client, std::move(keep_alive));
            return;
          }
          watch.pending = false;
          return;
        }
        watch.pending = false;
        if (ec != asio::error::operation_aborted && !watch.stopping && !client.deadline.expired()) {
          watch.gone = true;
          if (client.upstream) {
            boost::system::error_code ignored;
            client.upstream->close(ignored);
          }
        }
      });
}

}  // namespace

void start_watch(ClientConnection& client) {
  if (client.buffer.size() > client.watch.max_buffered) return;  // flooding: answer, then close
  client.watch.pending = true;
  arm_watch(client, client.owner.lock());
}

asio::awaitable<void> stop_watch(ClientConnection& client) {
  client.watch.stopping = true;
  if (client.watch.pending) {
    boost::system::error_code ignored;
    client.socket.cancel(ignored);
  }
  while (client.watch.pending) {
    co_await asio::post(client.socket.get_executor(), asio::use_awaitable);
  }
}

}  // namespace dinodia::ha_bridge::detail
