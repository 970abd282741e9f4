#pragma once
// Internal to ha_bridge: Home Assistant's last `auth_required` message, byte for byte, so that
// the WebSocket relay can greet a client itself and connect upstream only once the client has
// proved a hub token (docs/lan-bridge.md, "Before authentication").
//
// The agent's own event stream hands it over when it connects (LanBridge::remember_ha_greeting),
// and every relay that connects upstream refreshes it with what Home Assistant (through the
// Supervisor) said. While nothing is known yet (no stream, just after start), one client at a
// time may connect upstream before authenticating to learn it; the others wait for that one.
#include <atomic>
#include <mutex>
#include <string>
#include <string_view>

namespace dinodia::ha_bridge::detail {

class AuthRequiredCache {
 public:
  // Home Assistant's own message is ~50 bytes; anything far larger is not remembered.
  static constexpr std::size_t kMaxRemembered = 4096;

  // The last message seen, or empty when none has been seen yet.
  std::string get() const {
    std::lock_guard lock(mutex_);
    return message_;
  }

  void remember(std::string_view message) {
    if (message.size() > kMaxRemembered) return;
    std::lock_guard lock(mutex_);
    if (message_ != message) message_.assign(message);
  }

  // Cold start only: true for the one caller allowed to connect upstream before its client
  // authenticated; it must call end_learning() once it has the message or has given up.
  bool try_begin_learning() { return !learning_.exchange(true, std::memory_order_acq_rel); }
  void end_learning() { learning_.store(false, std::memory_order_release); }

 private:
  mutable std::mutex mutex_;
  std::string message_;
  std::atomic<bool> learning_{false};
};

}  // namespace dinodia::ha_bridge::detail
