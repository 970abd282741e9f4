#include "agent/usage_cadence.hpp"

#include <algorithm>

namespace dinodia::agent {

UsageCadence UsageCadence::heating(const Options& o) {
  UsageCadence c;
  c.enabled = o.heating_usage_tracking_enabled;
  c.poll_ms = std::clamp<std::int64_t>(o.heating_usage_poll_interval_seconds, 60, 3600) * 1000;
  c.refresh_ms = std::max<std::int64_t>(1, o.heating_usage_label_refresh_minutes) * 60000;
  return c;
}

UsageCadence UsageCadence::electric(const Options& o) {
  UsageCadence c;
  c.enabled = o.electric_usage_tracking_enabled;
  c.poll_ms = std::clamp<std::int64_t>(o.electric_usage_poll_interval_seconds, 60, 3600) * 1000;
  const std::int64_t minutes =
      o.electric_usage_label_refresh_minutes > 0 ? o.electric_usage_label_refresh_minutes : 5;
  c.refresh_ms = std::max<std::int64_t>(60000, minutes * 60000);
  return c;
}

}  // namespace dinodia::agent
