#pragma once
// Internal to ha_bridge: the exchanges of one worker that are waiting for Home Assistant's
// answer, so that a client that goes away meanwhile cancels its upstream request.
//
// Watching a client costs a read attempt that fails and, once the answer is there, a cancel: about
// 7 % of the relay's CPU on a kiosk's small request, which Home Assistant answers in well under a
// millisecond. So an exchange is only watched once it has waited for a whole tick (50-100 ms):
// a client that leaves a slow call (a 40 s script, a camera that does not answer) still cancels
// it, a tick or two later. The ticker runs only while some exchange waits.
//
// Single-threaded: owned by a worker and used only on its event loop. It must outlive the
// exchanges' coroutines, which are destroyed with the event loop, while its timer must go
// before the event loop does: `bind` and `unbind` make the timer's life the shorter one.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace dinodia::ha_bridge::detail {

struct ClientConnection;

class WaitingExchanges {
 public:
  static constexpr auto kTick = std::chrono::milliseconds(50);
  static constexpr std::size_t kNotWaiting = std::numeric_limits<std::size_t>::max();

  void bind(boost::asio::io_context& ioc) { timer_.emplace(ioc); }
  void unbind() { timer_.reset(); }

  // The exchange on `client` now waits for Home Assistant.
  void add(ClientConnection& client);
  // It no longer waits (answered, failed, or the exchange is ending). Harmless when it was not
  // in the list.
  void remove(ClientConnection& client);

 private:
  void schedule();
  void on_tick();

  std::optional<boost::asio::steady_timer> timer_;
  std::vector<ClientConnection*> waiting_;
  std::uint64_t tick_ = 0;
  bool ticking_ = false;
};

}  // namespace dinodia::ha_bridge::detail
