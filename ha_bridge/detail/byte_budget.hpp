#pragma once
// Internal to ha_bridge: a byte budget shared by every connection of the bridge (both workers),
// for data held on behalf of clients that have not proved a hub token yet (docs/lan-bridge.md,
// "Before authentication"). Lock-free: a compare-and-swap per take.
#include <atomic>
#include <cstddef>

namespace dinodia::ha_bridge::detail {

class ByteBudget {
 public:
  explicit ByteBudget(std::size_t limit) : limit_(limit) {}

  // Takes `bytes` from the budget, or nothing when that would exceed the limit: a caller that
  // gets false refuses the data instead of queueing it.
  bool try_take(std::size_t bytes) {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }

  void give_back(std::size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  std::size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

}  // namespace dinodia::ha_bridge::detail
