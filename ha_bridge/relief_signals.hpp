#pragma once
// What the LAN bridge's kiosk-load relief (docs/lan-bridge.md#kiosk-relief) must know about
// Home Assistant to serve an answer from memory: whether the agent's event stream is up, and
// how many changes of each kind it reported. The agent holds the stream (agent/relief_events)
// and reports here; the relay reads these counters on every relieved request and records them
// when it asks Home Assistant, so that an answer is served again only while none has moved.
//
// Thread-safe and lock-free: atomics only. No Asio here (a public header).
#include <atomic>
#include <cstdint>

namespace dinodia::ha_bridge {

class ReliefSignals {
 public:
  // The counters at one moment. `stream` is odd while the event stream is up; it moves on every
  // change, so an answer recorded under one value was asked while the stream was up throughout
  // exactly when the value is odd and unchanged.
  struct Epochs {
    std::uint64_t states = 0;
    std::uint64_t registry = 0;
    std::uint64_t config = 0;
    std::uint64_t writes = 0;
    std::uint64_t stream = 0;
  };

  // Subscribed to every event below on a fresh connection: answers asked from now on may be
  // served from memory. Called by the one thread that holds the stream.
  void stream_up();
  // The stream was lost (Home Assistant restarting, the connection dropped): nothing asked
  // before is served from memory again.
  void stream_down();
  void state_changed();     // a state_changed event
  void registry_updated();  // any *_registry_updated event
  void config_updated();    // core_config_updated
  // A request that may change Home Assistant went through the relay (at its start and again
  // when its answer came): the bridge calls it itself.
  void write_seen();

  Epochs now() const;
  static bool stream_is_up(std::uint64_t stream) { return stream % 2 == 1; }

 private:
  std::atomic<std::uint64_t> states_{0};
  std::atomic<std::uint64_t> registry_{0};
  std::atomic<std::uint64_t> config_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> stream_{0};
};

}  // namespace dinodia::ha_bridge
