#include "ha_bridge/relief_signals.hpp"

namespace dinodia::ha_bridge {

void ReliefSignals::stream_up() {
  // One thread calls up and down, so the parity test and the increment need not be one step.
  if (!stream_is_up(stream_.load(std::memory_order_acquire))) {
    stream_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ReliefSignals::stream_down() {
  if (stream_is_up(stream_.load(std::memory_order_acquire))) {
    stream_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ReliefSignals::state_changed() {
  states_.fetch_add(1, std::memory_order_acq_rel);
}

void ReliefSignals::registry_updated() {
  registry_.fetch_add(1, std::memory_order_acq_rel);
}

void ReliefSignals::config_updated() {
  config_.fetch_add(1, std::memory_order_acq_rel);
}

void ReliefSignals::write_seen() {
  writes_.fetch_add(1, std::memory_order_acq_rel);
}

ReliefSignals::Epochs ReliefSignals::now() const {
  Epochs e;
  e.stream = stream_.load(std::memory_order_acquire);
  e.states = states_.load(std::memory_order_acquire);
  e.registry = registry_.load(std::memory_order_acquire);
  e.config = config_.load(std::memory_order_acquire);
  e.writes = writes_.load(std::memory_order_acquire);
  return e;
}

}  // namespace dinodia::ha_bridge
