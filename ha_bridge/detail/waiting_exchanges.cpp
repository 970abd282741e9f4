#include "ha_bridge/detail/waiting_exchanges.hpp"

#include "ha_bridge/detail/client_connection.hpp"
#include "ha_bridge/detail/client_watch.hpp"

namespace dinodia::ha_bridge::detail {

void WaitingExchanges::add(ClientConnection& client) {
  client.waiting_slot = waiting_.size();
  client.waiting_since = tick_;
  waiting_.push_back(&client);
  if (!ticking_) schedule();
}

void WaitingExchanges::remove(ClientConnection& client) {
  const std::size_t slot = client.waiting_slot;
  if (slot == kNotWaiting) return;
  client.waiting_slot = kNotWaiting;
  if (slot + 1 != waiting_.size()) {
    waiting_[slot] = waiting_.back();
    waiting_[slot]->waiting_slot = slot;
  }
  waiting_.pop_back();
}

void WaitingExchanges::schedule() {
  if (!timer_) return;
  ticking_ = true;
  timer_->expires_after(kTick);
  timer_->async_wait([this](boost::system::error_code ec) {
    ticking_ = false;
    if (!ec) on_tick();
  });
}

void WaitingExchanges::on_tick() {
  ++tick_;
  // Waiting since at least the tick before the last one: a whole tick, at least 50 ms.
  for (std::size_t i = 0; i < waiting_.size();) {
    ClientConnection& client = *waiting_[i];
    if (tick_ - client.waiting_since < 2) {
      ++i;
      continue;
    }
    remove(client);  // moves the last entry here: look at slot i again
    start_watch(client);
  }
  if (!waiting_.empty()) schedule();
}

}  // namespace dinodia::ha_bridge::detail
