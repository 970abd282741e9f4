#pragma once
// Internal to ha_bridge: which WebSocket commands the kiosk-load relief may answer from memory,
// and how a held answer becomes the frame Home Assistant would send to another session
// (docs/lan-bridge.md#one-shot-websocket-sessions). Pure functions, no Asio.
//
// Home Assistant writes a command's result with the id first, `{"id":7,"type":"result",…}`, and
// the rest of the frame does not depend on the id or on the session (every session logs in
// with the same credential). So the frame after the id, held once, answers the same command
// for any session: `{"id":` + that session's id + the held rest.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dinodia::ha_bridge::detail {

struct WsReliefCommand {
  std::uint64_t id = 0;
  std::string key;   // the relief table's key: "WS " + the command's type
  std::string type;  // the command's type
};

// A registry list command the relief answers: exactly {"id": <integer ≥ 1>, "type":
// "config/{entity,device,area,floor,label}_registry/list"} (the kiosk's, as JSON.stringify
// writes it, in any key order or spacing). Anything else, a payload field included, is nothing.
std::optional<WsReliefCommand> ws_relief_command(std::string_view frame);

// The id a frame from Home Assistant starts with, as Core writes it (`{"id":7,…`: digits without
// a leading zero, a comma after); nothing for a frame written otherwise.
std::optional<std::uint64_t> ws_leading_id(std::string_view frame);

// Whether a frame from Home Assistant is its answer to the command with `id` (id first).
bool ws_answers_id(std::string_view frame, std::uint64_t id);

// For Home Assistant's answer to the command with `id`: what follows the id when the frame is a
// successful result written id first; nothing for an error result or another frame.
std::optional<std::string> ws_result_after_id(std::string_view frame, std::uint64_t id);

// The frame Home Assistant would send to the session that asked with `id`.
std::string ws_result_with_id(std::uint64_t id, std::string_view after_id);

}  // namespace dinodia::ha_bridge::detail
