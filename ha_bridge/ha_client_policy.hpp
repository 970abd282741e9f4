#pragma once
// The decisions of the agent's own Home Assistant WebSocket clients (ha_client.hpp) that do not
// need a socket: how long to wait before reconnecting, and which credential to present next.
// Pure, so they are tested directly (tests/unit/ha_client_test.cpp).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace dinodia::ha_bridge {

// Reconnect delay = base + jitter_draw + min(max_extra, (failures - 1) × step), legacy §8.3
// (2,000 + random(0..2,999) + min(30,000, n × 2,000) ms). Legacy grows the extra with its
// credential index, which never resets; here it grows with consecutive failed attempts and
// resets on auth_ok, so one bad hour does not slow every later reconnect.
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

// The credential to send on `auth_required`: `index` while it is in range, otherwise the first;
// nullopt when there is none (the caller logs "no HA auth token available" and fails).
std::optional<std::size_t> credential_for_auth(std::size_t index, std::size_t count);

// Long-lived tracker connection, after `auth_invalid` on credential `index`: the next one, and
// after the last one the first again (legacy §17 item 31: the legacy index got stuck past the
// end). The reconnect back-off keeps a rejected set of credentials from hammering HA.
std::size_t credential_after_rejection(std::size_t index, std::size_t count);

// One-shot command (legacy §8.2), after `auth_invalid` on credential `index`: the next one on a
// new connection, or nullopt when every credential has been rejected (ha_ws_auth_invalid).
std::optional<std::size_t> untried_credential_after_rejection(std::size_t index, std::size_t count);

}  // namespace dinodia::ha_bridge
