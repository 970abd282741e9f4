#include "ha_bridge/detail/upstream_pool.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace dinodia::ha_bridge::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// An idle keep-alive connection must have nothing to read. EOF means the server closed it
// (aiohttp's keep-alive timeout); unexpected bytes mean it is out of step. Either way: drop it.
bool looks_alive(tcp::socket& socket) {
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::UpstreamPool(std::size_t max_idle, std::chrono::steady_clock::duration max_idle_age)
    : max_idle_(max_idle), max_idle_age_(max_idle_age) {}

std::optional<tcp::socket> UpstreamPool::take(bool request_is_retryable) {
  constexpr auto kProbeAfterIdle = std::chrono::seconds(1);
  const auto now = std::chrono::steady_clock::now();
  while (true) {
    std::optional<Idle> candidate;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (idle_.empty()) return std::nullopt;
      candidate.emplace(std::move(idle_.back()));
      idle_.pop_back();
    }
    const auto idle_for = now - candidate->since;
    const bool probe = !request_is_retryable || idle_for > kProbeAfterIdle;
    if (idle_for > max_idle_age_ || (probe && !looks_alive(candidate->socket))) {
      boost::system::error_code ignored;
      candidate->socket.close(ignored);
      continue;
    }
    return std::move(candidate->socket);
  }
}

void UpstreamPool::give_back(tcp::socket socket) {
  if (!socket.is_open() || max_idle_ == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() >= max_idle_) {
    // Keep the freshest connections: drop the oldest.
    boost::system::error_code ignored;
    idle_.front().socket.close(ignored);
    idle_.pop_front();
  }
  idle_.push_back(Idle{std::move(socket), std::chrono::steady_clock::now()});
}

void UpstreamPool::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& idle : idle_) {
    boost::system::error_code ignored;
    idle.socket.close(ignored);
  }
  idle_.clear();
}

std::size_t UpstreamPool::idle_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_.size();
}

std::optional<tcp::endpoint> UpstreamPool::cached_endpoint() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return endpoint_;
}

void UpstreamPool::set_cached_endpoint(std::optional<tcp::endpoint> endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  endpoint_ = std::move(endpoint);
}

}  // namespace dinodia::ha_bridge::detail
