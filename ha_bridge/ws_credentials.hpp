#pragma once
// The credentials the agent logs in to Home Assistant's WebSocket API with, and the one rule for
// moving through them. Both the bridge's WebSocket relay and the agent's own client
// (ha_client/) log in this way, so the rule lives here, beside UpstreamTarget, which both
// already use; the bridge never depends on ha_client, so there is no cycle. No Asio here.
//
// The list is in the order ws_auth_mode gives (the Supervisor token first, then
// ha_access_token; empties removed, docs/compatibility.md). Home Assistant closes the
// connection after auth_invalid, so the next credential is always tried on a new connection.
// Pure functions of an index and the list's size, so they are tested directly
// (tests/unit/ha_client_test.cpp).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dinodia::ha_bridge {

// The credential to send on `auth_required`: `index` while it is in range, otherwise the first;
// nullopt when there is none (the caller reports the missing credential and gives up).
std::optional<std::size_t> credential_for_auth(std::size_t index, std::size_t count);

// A connection that never gives up (the agent's tracker), after `auth_invalid` on credential
// `index`: the next one, and after the last one the first again (the legacy index got stuck
// past the end). The caller's reconnect back-off keeps a rejected set from hammering HA.
std::size_t credential_after_rejection(std::size_t index, std::size_t count);

// A connection made for one client or one command, after `auth_invalid` on credential `index`:
// the next one, or nullopt when every credential has been rejected.
std::optional<std::size_t> untried_credential_after_rejection(std::size_t index, std::size_t count);

// The `auth` message that presents `access_token`.
std::string ws_auth_message(std::string_view access_token);

}  // namespace dinodia::ha_bridge
