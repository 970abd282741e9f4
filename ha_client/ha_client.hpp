#pragma once
// The agent's own access to Home Assistant and the Supervisor, as opposed to relaying a
// client's requests (that is ha_bridge/):
//   * HaConnection (ha_connection.hpp): the long-lived tracker WebSocket with reconnect,
//     back-off + jitter, request/response matching and event delivery;
//   * ws_command_once (ws_command_once.hpp): one WebSocket command on a new connection (the
//     Zigbee routes, the area list); ws_commands_once (ws_commands_once.hpp): several on one,
//     each with Home Assistant's own result (the REST shims, docs/lan-bridge.md#rest-shims);
//   * REST (rest.hpp): GET /network/info, GET /core/api/states/<id>, POST
//     /core/api/services/...
//
// Asynchronous style: callbacks throughout, as Boost.Beast's own examples. Each operation is
// one object on its own strand that ends by calling the caller's callback once, on the
// io_context's threads (never inline from the call). Callbacks, not coroutines, because every
// caller (the telemetry service, the Zigbee routes) is itself callback driven and keeps its
// state under its own lock; an awaitable would make each of them spawn a coroutine to call in.
// Every operation has a timeout. No Asio/Beast in these public headers: the io_context is only
// forward-declared, and the Beast parts live in ha_client/detail/.
#include "ha_client/config.hpp"
#include "ha_client/ha_connection.hpp"
#include "ha_client/rest.hpp"
#include "ha_client/ws_command_once.hpp"
#include "ha_client/ws_commands_once.hpp"
