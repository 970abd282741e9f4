#pragma once
// The Home Assistant event stream the LAN bridge's kiosk-load relief needs
// (docs/lan-bridge.md#kiosk-relief): one WebSocket of the agent's own, subscribed to
// state_changed, the registry updates and core_config_updated, reported to the bridge's
// ReliefSignals. The stream is up (answers may be served from memory) only once every
// subscription is confirmed on the current connection, and down from the moment it is lost.
//
// A connection of its own rather than the usage trackers': they can be turned off, and they
// parse every event they get, where this stream only looks for a few names in each frame.
// Callbacks on the bridge's loop (ha_client style), on the connection's strand.
//
// Its connection also hands Home Assistant's `auth_required` greeting to `on_greeting` each time
// it connects: the bridge's WebSocket relay greets LAN clients with it, so that not even the first
// client after a start makes it connect upstream before proving a hub token
// (docs/lan-bridge.md, "Before authentication").
#include <functional>
#include <memory>
#include <string_view>

#include "ha_bridge/relief_signals.hpp"
#include "ha_client/config.hpp"

namespace dinodia::agent {

class ReliefEvents {
 public:
  virtual ~ReliefEvents() = default;
  virtual void start() = 0;
  // Closes the connection (the stream goes down); no reconnect. Idempotent.
  virtual void stop() = 0;
};

std::shared_ptr<ReliefEvents> make_relief_events(boost::asio::io_context& io,
                                                 ha_client::HaClientConfig ha,
                                                 ha_bridge::ReliefSignals& signals,
                                                 std::function<void(std::string_view)> on_greeting);

}  // namespace dinodia::agent
