#pragma once
// Internal to ha_bridge: the kiosk relief's own logged-in WebSocket to Home Assistant, on which
// a registry list that no session holds or is asking is asked (docs/lan-bridge.md#one-shot-
// websocket-sessions). Without it, the one-shot session that asks connects and logs in upstream
// itself: a connection and a login for every list the window no longer covers (every kiosk
// refresh when one kiosk is in Home mode). With it, that costs Home Assistant one command on a
// connection that stays logged in.
//
// One connection for the whole bridge, on the loop of the worker that first needed it; asked
// from any worker. Connected when first asked, closed after a minute without asks, and again
// when asked after that. Anything it cannot answer (Home Assistant down, restarting, an error
// result, no answer in time) is answered with nothing: the session then asks Home Assistant on
// a connection of its own, as without this.
#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace dinodia::ha_bridge::detail {

struct BridgeContext;

class ReliefUpstream {
 public:
  // Home Assistant's answer as ws_result_after_id gives it (the frame after the id) when it is a
  // successful result; nothing otherwise.
  using Done = std::function<void(std::optional<std::string> after_id)>;

  // `ctx` must outlive the loop's handlers (the bridge owns both and stops the loop first).
  static std::shared_ptr<ReliefUpstream> create(const boost::asio::any_io_executor& loop,
                                                BridgeContext& ctx);
  virtual ~ReliefUpstream() = default;

  // Sends {"id": <its own>, "type": `type`} once logged in. From any thread; `done` runs once,
  // on the upstream's loop.
  virtual void ask(std::string type, Done done) = 0;
  // Closes the connection; what is pending gets nothing. From any thread (the bridge's stop).
  virtual void stop() = 0;
};

}  // namespace dinodia::ha_bridge::detail
