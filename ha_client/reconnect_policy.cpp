#include "ha_client/reconnect_policy.hpp"

#include <algorithm>

namespace dinodia::ha_client {

std::chrono::milliseconds reconnect_delay(const ReconnectPolicy& policy, std::int64_t failures,
                                          std::int64_t jitter_draw) {
  const std::int64_t jitter_span = std::max<std::int64_t>(0, policy.jitter.count());
  const std::int64_t draw =
      jitter_span == 0 ? 0 : std::clamp<std::int64_t>(jitter_draw, 0, jitter_span - 1);
  const std::int64_t max_extra = std::max<std::int64_t>(0, policy.max_extra.count());
  const std::int64_t step = std::max<std::int64_t>(0, policy.step.count());
  const std::int64_t steps = std::max<std::int64_t>(1, failures) - 1;
  // Compared before multiplying, so a very long outage cannot overflow.
  const std::int64_t extra =
      step == 0 ? 0
                : (steps >= max_extra / step + 1 ? max_extra : std::min(max_extra, steps * step));
  return std::chrono::milliseconds(std::max<std::int64_t>(0, policy.base.count()) + draw + extra);
}

}  // namespace dinodia::ha_client
