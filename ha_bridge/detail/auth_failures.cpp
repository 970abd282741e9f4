#include "ha_bridge/detail/auth_failures.hpp"

#include <algorithm>
#include <string>

#include "common/log.hpp"

namespace dinodia::ha_bridge::detail {

std::chrono::milliseconds AuthFailures::failed(const Address& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(address);
  if (it == entries_.end()) {
    if (entries_.size() >= settings_.max_addresses) make_room(now);
    it = entries_.emplace(address, Entry{}).first;
  } else if (now - it->second.last >= settings_.forget_after) {
    it->second.recent = 0;
  }
  Entry& entry = it->second;
  ++entry.recent;
  ++entry.unlogged;
  entry.last = now;
  if (now >= entry.next_log) log_summary(address, entry, now);
  if (entry.recent <= settings_.free_attempts) return std::chrono::milliseconds(0);
  const std::uint32_t doublings =
      std::min<std::uint32_t>(entry.recent - settings_.free_attempts - 1, 16);
  return std::min(settings_.max_delay, settings_.first_delay * (std::int64_t{1} << doublings));
}

void AuthFailures::tick(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& entry = it->second;
    if (entry.unlogged > 0 && now >= entry.next_log) log_summary(it->first, entry, now);
    if (entry.unlogged == 0 && now - entry.last >= settings_.forget_after) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t AuthFailures::addresses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

// Never the token: only the address and how many attempts failed.
void AuthFailures::log_summary(const Address& address, Entry& entry, Clock::time_point now) const {
  log::warn("Hub token refused", log::Fields()
                                     .add("address", address.to_string())
                                     .add("attempts", static_cast<std::int64_t>(entry.unlogged))
                                     .add("delayed", entry.recent > settings_.free_attempts));
  entry.unlogged = 0;
  entry.next_log = now + settings_.log_every;
}

// The table is full: forget addresses that have been quiet long enough, else the one that failed
// longest ago (its unlogged attempts are logged first, so nothing goes unreported).
void AuthFailures::make_room(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& item) {
    return item.second.unlogged == 0 && now - item.second.last >= settings_.forget_after;
  });
  if (entries_.size() < settings_.max_addresses) return;
  auto oldest =
      std::min_element(entries_.begin(), entries_.end(),
                       [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
  if (oldest->second.unlogged > 0) log_summary(oldest->first, oldest->second, now);
  entries_.erase(oldest);
}

}  // namespace dinodia::ha_bridge::detail
