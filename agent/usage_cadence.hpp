#pragma once
// How often the tracker loop polls one kind of usage (heating or electric) and refreshes its
// entity selection from Home Assistant's registries, and when it last did. Strand only.
#include <cstdint>

#include "agent/options.hpp"

namespace dinodia::agent {

struct UsageCadence {
  // From the options: poll intervals clamped to 60..3600 s as the legacy agent did; label refresh
  // every heating_usage_label_refresh_minutes (at least 1), electric every
  // electric_usage_label_refresh_minutes (5 when not positive, at least 1 minute).
  static UsageCadence heating(const Options& options);
  static UsageCadence electric(const Options& options);

  bool enabled = true;
  std::int64_t poll_ms = 300000;
  std::int64_t refresh_ms = 300000;
  std::int64_t polled_at = 0;     // epoch ms
  std::int64_t refreshed_at = 0;  // epoch ms

  // The loop ticks on the shorter of the two poll intervals; a kind is polled once its own has
  // passed (up to 1 s early, so a tick a little ahead of it does not skip a whole period).
  bool poll_due(std::int64_t now_ms) const {
    return enabled && now_ms - polled_at >= poll_ms - 1000;
  }
  bool refresh_due(std::int64_t now_ms, bool force) const {
    return enabled && (force || now_ms - refreshed_at >= refresh_ms);
  }
};

}  // namespace dinodia::agent
