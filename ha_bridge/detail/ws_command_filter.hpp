#pragma once
// Inspection of client→Home Assistant WebSocket text frames (docs/lan-bridge.md,
// "The command filter"; docs/compatibility.md#w2). Pure functions, no Asio, so they are
// unit-testable on their own.
//
// Frames are relayed byte-exact; a frame is parsed only when a cheap scan says it could be a
// client `auth` message or a denied command. Without a backslash a JSON string is spelled
// literally, so a frame that contains no backslash and none of the trigger substrings cannot
// carry a type of "auth" or one starting with "supervisor/" or "hassio/", nor a call_service
// whose domain is hassio, nor an execute_script with a hassio action (names_hassio_action.hpp). A
// frame that needs inspection but does not parse is refused, never forwarded: another parser
// (Core's) might read a denied command in it (fail closed).
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::ha_bridge::detail {

// True for command types the bridge refuses locally, like the Supervisor's DENIED_WS_TYPE_PREFIXES.
bool is_denied_ws_type(std::string_view type);

// True for a service domain Home Assistant reads as `hassio`: Core lower-cases the domain of a
// call_service, and no character other than A-Z lower-cases to an ASCII letter of it.
bool is_hassio_domain(std::string_view domain);

struct ClientFrameVerdict {
  enum class Action {
    forward_original,   // send the frame upstream unchanged
    forward_rewritten,  // a batch with denied elements removed: send `rewritten`
    drop,               // nothing goes upstream (every command was denied)
    client_auth,        // a {"type":"auth"} message: never forwarded
    refuse,             // needed inspection but is not JSON we can read: close the session
  };
  Action action = Action::forward_original;
  std::string rewritten;
  // `{"id":…,"type":"result","success":false,"error":{"code":"unauthorized",…}}` per denied
  // command, to be sent to the client in order.
  std::vector<std::string> local_replies;
  std::string access_token;  // client_auth only; empty when absent or not a string
};

// A frame that needs inspection but nests deeper than this is dropped whole, with no local
// replies: taking it apart would recurse once per level (a remote crash found by fuzzing).
inline constexpr int kMaxInspectedDepth = 64;

// `allow_hassio_domain` lets call_service with domain hassio, and execute_script with a hassio
// action, through (BridgeConfig).
ClientFrameVerdict inspect_client_text(std::string_view frame, bool allow_hassio_domain = false);

}  // namespace dinodia::ha_bridge::detail
