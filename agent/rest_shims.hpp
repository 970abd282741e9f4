#pragma once
// The REST shims (docs/lan-bridge.md#rest-shims): Home Assistant REST paths that Home Assistant
// does not have, which the iOS app (and the kiosk, for automations) call anyway, answered by
// translating them to Home Assistant's WebSocket commands:
//   GET  /api/config/label_registry/list    config/label_registry/list
//   GET  /api/config/device_registry/list   config/device_registry/list
//   GET  /api/config/entity_registry/list   config/entity_registry/list
//   POST /api/config/entity_registry/remove config/entity_registry/remove
//   POST /api/config/device_registry/remove config/device_registry/remove (older Core:
//                                           remove_config_entry for each of its config entries)
//   GET  /api/config/automation             get_states, then automation/config per automation
// The bridge admits them as it admits a relayed path (hub token, then the allow-list), so these
// routes check nothing themselves; the answer shapes and the error rule: rest_shim_rules.hpp.
#include <functional>
#include <vector>

#include "ha_bridge/local_routes.hpp"
#include "ha_client/config.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::agent {

// `io` returns the loop the Home Assistant calls run on (the bridge's); it is only called while
// a request is handled, so it may be bound after the routes are built.
std::vector<ha_bridge::LocalRoute> rest_shim_routes(ha_client::HaClientConfig ha,
                                                    std::function<boost::asio::io_context&()> io);

}  // namespace dinodia::agent
