#pragma once
// Internal to ha_bridge: the WebSocket commands that may change Home Assistant, for the
// kiosk-load relief (docs/lan-bridge.md#kiosk-relief). A held answer is never served after a
// write that started since it was asked, so a session reports each write twice: when it goes
// upstream and when its answer comes back (by then every change it made is done, and the events
// about it may still be on their way to the agent's event stream). Pure, no Asio.
#include <cstdint>
#include <string_view>
#include <vector>

namespace dinodia::ha_bridge::detail {

// A command is a read when it is a subscription, a ping, a render, or its type ends in /list,
// /list_for_display or /get; anything else, and a frame that is not such JSON, may write.
class WsWriteTracker {
 public:
  // A client frame going upstream: true when it may write (report it now).
  bool client_frame(std::string_view frame);
  // A frame from Home Assistant: true when it answers a write sent before (report it again).
  bool upstream_frame(std::string_view frame);

 private:
  // Ids of writes whose answer has not come yet; a few at most for any real client.
  static constexpr std::size_t kMaxPending = 64;
  std::vector<std::uint64_t> pending_;
  bool unknown_pending_ = false;  // a write without an id we could read: the next answer ends it
};

}  // namespace dinodia::ha_bridge::detail
