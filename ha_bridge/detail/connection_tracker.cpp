#include "ha_bridge/detail/connection_tracker.hpp"

#include <vector>

namespace dinodia::ha_bridge::detail {

void ConnectionTracker::set_limits(Limits limits) {
  std::lock_guard<std::mutex> lock(mutex_);
  limits_ = limits;
}

ConnectionTracker::Admission ConnectionTracker::admit(const Address& address) {
  Closer victim;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (limits_.per_address > 0) {
      const auto it = per_address_.find(address);
      if (it != per_address_.end() && it->second >= limits_.per_address) {
        return Admission::refused_address;
      }
    }
    const auto count_in = [&] {
      ++admitted_;
      ++per_address_[address];
    };
    if (limits_.total == 0 || closers_.size() + admitted_ - evicting_ < limits_.total) {
      count_in();
      return Admission::admitted;
    }
    // Connections being evicted still hold their descriptor until their loop closes them; a
    // burst may run ahead of those closes by a bounded amount only.
    if (evicting_ >= limits_.total / 8 + 16) return Admission::refused_full;
    for (auto& [id, entry] : closers_) {
      if (entry.authenticated || entry.evicting) continue;
      entry.evicting = true;
      ++evicting_;
      victim = entry.close;
      break;
    }
    if (!victim) return Admission::refused_full;
    count_in();
  }
  victim();  // posts to the victim's loop; must not run under our lock
  return Admission::admitted_after_eviction;
}

std::uint64_t ConnectionTracker::add(Closer closer, Closer on_stopping, const Address& address,
                                     bool admitted) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t id = next_id_++;
  closers_.emplace(id, Entry{std::move(closer), std::move(on_stopping), address});
  if (admitted && admitted_ > 0) {
    --admitted_;  // admit() counted it already
  } else {
    ++per_address_[address];
  }
  return id;
}

void ConnectionTracker::mark_authenticated(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = closers_.find(id);
  if (it != closers_.end()) it->second.authenticated = true;
}

void ConnectionTracker::remove(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = closers_.find(id);
  if (it == closers_.end()) return;
  if (it->second.evicting) --evicting_;
  const auto count = per_address_.find(it->second.address);
  if (count != per_address_.end() && --count->second == 0) per_address_.erase(count);
  closers_.erase(it);
  closed_.fetch_add(1, std::memory_order_relaxed);
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

std::size_t ConnectionTracker::addresses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return per_address_.size();
}

}  // namespace dinodia::ha_bridge::detail
