#pragma once
// Who may use what the bridge serves on port 8099: a client that presents a hub token the
// registry accepts. The whole decision is this one function, used by the HTTP relay (the
// Authorization header), the WebSocket relay (the access_token of the client's auth message)
// and the agent's own routes (the Zigbee helpers), so they cannot drift apart. No Asio here.
#include <string_view>

#include "ha_bridge/token_registry.hpp"

namespace dinodia::ha_bridge {

// Whether `presented` (trimmed) is an accepted hub token. A connection that proves tokens
// repeatedly passes its `remembered` token, so that a kiosk's keep-alive connection is not
// hashed again on every request (ProvenToken says when the memory holds). No registry (a bridge
// started without one) accepts nothing.
bool hub_token_accepted(const TokenRegistry* tokens, std::string_view presented,
                        ProvenToken* remembered = nullptr);

}  // namespace dinodia::ha_bridge
