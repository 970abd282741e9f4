#pragma once
// Internal to ha_bridge: Home Assistant's `auth_ok` as the last login through the relay received
// it, byte for byte, so that a one-shot kiosk session can be told it is logged in without a login
// of its own upstream (docs/lan-bridge.md#one-shot-websocket-sessions).
//
// The message names Home Assistant's version, which changes only when Home Assistant restarts;
// a restart drops the agent's event stream (ReliefSignals' stream epoch moves). So a message is
// given out only under the stream epoch it was learnt in, and only while that stream is up.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "ha_bridge/relief_signals.hpp"

namespace dinodia::ha_bridge::detail {

class AuthOkCache {
 public:
  // Home Assistant's own message is ~50 bytes; anything far larger is not remembered.
  static constexpr std::size_t kMaxRemembered = 4096;

  // The message learnt under `stream` (the epoch now), or empty.
  std::string get(std::uint64_t stream) const {
    if (!ReliefSignals::stream_is_up(stream)) return {};
    std::lock_guard lock(mutex_);
    return stream == stream_ ? message_ : std::string();
  }

  // A login through the relay succeeded with `message` while the stream epoch was `stream`.
  void remember(std::string_view message, std::uint64_t stream) {
    if (message.size() > kMaxRemembered || !ReliefSignals::stream_is_up(stream)) return;
    std::lock_guard lock(mutex_);
    stream_ = stream;
    if (message_ != message) message_.assign(message);
  }

 private:
  mutable std::mutex mutex_;
  std::string message_;
  std::uint64_t stream_ = 0;
};

}  // namespace dinodia::ha_bridge::detail
