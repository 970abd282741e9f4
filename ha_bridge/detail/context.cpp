#include "ha_bridge/detail/context.hpp"

#include <vector>

namespace dinodia::ha_bridge::detail {

std::uint64_t ConnectionTracker::add(Closer closer, Closer on_stopping) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t id = next_id_++;
  closers_.emplace(id, Entry{std::move(closer), std::move(on_stopping)});
  return id;
}

void ConnectionTracker::remove(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  closers_.erase(id);
}

// Closers are copied out first: they post to strands and must not run under our lock (a
// connection that finishes removes itself, which takes the lock).
void ConnectionTracker::notify_stopping() {
  std::vector<Closer> callbacks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, entry] : closers_) {
      if (entry.on_stopping) callbacks.push_back(entry.on_stopping);
    }
  }
  for (auto& cb : callbacks) cb();
}

void ConnectionTracker::close_all() {
  std::vector<Closer> callbacks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, entry] : closers_) callbacks.push_back(entry.close);
  }
  for (auto& cb : callbacks) {
    if (cb) cb();
  }
}

std::size_t ConnectionTracker::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closers_.size();
}

}  // namespace dinodia::ha_bridge::detail
