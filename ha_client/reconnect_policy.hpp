#pragma once
// How long the agent's tracker connection (ha_connection.hpp) waits before reconnecting. Pure,
// so it is tested directly (tests/unit/ha_client_test.cpp). Which credential the next attempt
// presents is ha_bridge/ws_credentials.hpp's rule, shared with the bridge.
#include <chrono>
#include <cstdint>

namespace dinodia::ha_client {

// Reconnect delay = base + jitter_draw + min(max_extra, (failures - 1) × step), as the legacy
// agent's 2,000 + random(0..2,999) + min(30,000, n × 2,000) ms (docs/compatibility.md). Legacy
// grows the extra with its credential index, which never resets; here it grows with
// consecutive failed attempts and resets on auth_ok, so one bad hour does not slow every later
// reconnect.
struct ReconnectPolicy {
  std::chrono::milliseconds base{2000};
  std::chrono::milliseconds jitter{3000};  // the draw is uniform in [0, jitter)
  std::chrono::milliseconds step{2000};
  std::chrono::milliseconds max_extra{30000};
};

// `failures` counts consecutive failed attempts including the one that just ended (>= 1; lower
// values are treated as 1). `jitter_draw` is the random part; it is clamped into [0, jitter).
std::chrono::milliseconds reconnect_delay(const ReconnectPolicy& policy, std::int64_t failures,
                                          std::int64_t jitter_draw);

}  // namespace dinodia::ha_client
