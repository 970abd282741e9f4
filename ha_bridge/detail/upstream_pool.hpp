#pragma once
// Internal to ha_bridge: idle keep-alive connections to the Supervisor. Each bridge worker has
// its own pool, used by the sessions on that worker's event loop, so a connection taken from it
// is already registered with the right loop. A connection is only ever used by one exchange at
// a time; it goes back to the pool only when that exchange ended cleanly (complete request and
// response, no `Connection: close`).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace dinodia::ha_bridge::detail {

class UpstreamPool {
 public:
  UpstreamPool(std::size_t max_idle, std::chrono::steady_clock::duration max_idle_age);

  // The most recently returned connection that still looks open; nullopt when none is left.
  // A connection idle for a moment cannot have been closed by the server's keep-alive timer, and
  // a request without a body is simply retried on a fresh connection if it was; so the probe
  // for a server-side close (one extra system call) is only made when the connection has been
  // idle for a while or when the caller says the request could not be retried.
  std::optional<boost::asio::ip::tcp::socket> take(bool request_is_retryable);
  void give_back(boost::asio::ip::tcp::socket socket);
  void clear();
  std::size_t idle_count() const;

  // The last endpoint a connect succeeded to; cleared when a connect fails so that the next
  // attempt resolves the host again.
  std::optional<boost::asio::ip::tcp::endpoint> cached_endpoint() const;
  void set_cached_endpoint(std::optional<boost::asio::ip::tcp::endpoint> endpoint);

 private:
  struct Idle {
    boost::asio::ip::tcp::socket socket;
    std::chrono::steady_clock::time_point since;
  };
  const std::size_t max_idle_;
  const std::chrono::steady_clock::duration max_idle_age_;
  mutable std::mutex mutex_;
  std::deque<Idle> idle_;
  std::optional<boost::asio::ip::tcp::endpoint> endpoint_;
};

}  // namespace dinodia::ha_bridge::detail
