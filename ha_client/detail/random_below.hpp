#pragma once
// Internal to ha_client: the random draws (reconnect jitter, one-shot command ids).
#include <cstdint>
#include <random>

namespace dinodia::ha_client::detail {

// Uniform in [0, bound); 0 when bound <= 0.
inline std::int64_t random_below(std::int64_t bound) {
  if (bound <= 0) return 0;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<std::int64_t>(0, bound - 1)(rng);
}

}  // namespace dinodia::ha_client::detail
