#pragma once
// Home Assistant Core + Supervisor stand-in for integration tests and benchmarks.
// One process (`fake_ha`) that speaks the real protocols on a real socket:
//   * Supervisor Core proxy REST:   /core/api/...   (Bearer <supervisor token> required)
//   * Supervisor Core proxy WS:     /core/api/websocket (HA auth handshake, registry lists and
//                                    removals, automation/config, state_changed events,
//                                    ping/pong, coalesced arrays)
//   * Supervisor API:               /network/info   (for LAN address detection)
//   * Test control:                 /_fake/...      (no auth; tests steer and inspect it)
// Command line: fake_ha --port 0 --token <supervisor token> [--entities 300]
// It prints "LISTENING <port>" once it accepts connections.
//
// fake_ha_main.cpp owns the listener, REST and control endpoints; fake_ha_ws.cpp implements the
// WebSocket side. Both share FakeHaState. fake_ha_stats.cpp counts what reaches the stand-in.
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::fakes {

struct RecordedRequest {
  std::string method;
  std::string target;  // as received, e.g. "/core/api/states?x=1"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct FakeHaState {
  std::string supervisor_token;
  std::string ha_version = "2026.11.0";
  std::atomic<bool> core_running{true};  // false: every /core/* answers 502 like the Supervisor

  std::mutex mutex;                // guards everything below
  nlohmann::json states;           // array of HA state objects
  nlohmann::json area_registry;    // config/area_registry/list result
  nlohmann::json label_registry;   // config/label_registry/list result
  nlohmann::json device_registry;  // config/device_registry/list result
  nlohmann::json entity_registry;  // config/entity_registry/list result
  nlohmann::json network_info;     // /network/info "data"
  // POST /_fake/set {"network_info_delay": {"ms": M, "count": N}}: the next N /network/info
  // requests (-1: every one, until set again) are answered after M ms, as a busy Supervisor;
  // an agent that gives up first is counted as "cancelled" in /_fake/stats.
  long network_info_delay_ms = 0;
  int network_info_delays = 0;
  // POST /_fake/set {"read_delay_ms": M}: every GET /api/, /api/states*, /api/config and
  // POST /api/template is answered after M ms (0: at once), so that requests that overlap in
  // flight are observable (the kiosk relief's joining); counted as "inflight" meanwhile. The
  // WebSocket's config/*_registry/list results are sent after M ms too.
  long read_delay_ms = 0;
  // POST /_fake/set {"subscribe_delay_ms": M}: subscribe_events is confirmed after M ms, so that
  // a client can be caught with its subscriptions unanswered.
  long subscribe_delay_ms = 0;
  // Zigbee behaviour (POST /_fake/set {"zha": {...}}): "devices" (zha/devices result; absent:
  // HA answers unknown_command as without ZHA), "devices_error" {code, message},
  // "devices_delay_ms", "permit_status" + "permit_body" (services/zha/permit answer).
  nlohmann::json zha = nlohmann::json::object();
  // Automations as automations.yaml holds them, by id: written and read by the REST
  // /api/config/automation/config/<id> (which also adds or drops the automation.* state, as
  // Core's reload does), read by the WebSocket automation/config.
  nlohmann::json automations = nlohmann::json::object();
  // POST /_fake/set {"ws_admin": false}: the WebSocket user is not an administrator, so the
  // commands Core marks require_admin (registry removals) answer `unauthorized`.
  bool ws_admin = true;
  // POST /_fake/set {"device_remove_command": false}: Core from before
  // config/device_registry/remove, which only has remove_config_entry.
  bool device_remove_command = true;
  std::vector<RecordedRequest> requests;    // every REST request received (for assertions)
  std::vector<nlohmann::json> ws_received;  // every WS message received after auth
  std::atomic<int> ws_connections_open{0};
  std::atomic<int> ws_connections_total{0};
};

// Serves one upgraded WebSocket connection to completion on the calling thread (the listener
// runs one thread per connection). `req` is the upgrade request; `buffer` holds bytes already
// read past it. Implemented in fake_ha_ws.cpp.
void serve_websocket(boost::asio::ip::tcp::socket socket,
                     boost::beast::http::request<boost::beast::http::string_body> req,
                     boost::beast::flat_buffer buffer, std::shared_ptr<FakeHaState> state);

// Sends `event` to every subscription of `event_type` on every authenticated connection.
void broadcast_event(const std::string& event_type, const nlohmann::json& event);

// Drops every open WebSocket connection (used to simulate Core restarting).
void drop_all_websockets();

// What reached the stand-in (fake_ha_stats.cpp): GET /_fake/stats shows counts_json() under
// "counts", POST /_fake/stats/reset calls reset_counts(). Any thread.
void count_http_request(std::string_view target);
void count_ws_connection();
void count_ws_auth(bool ok);
void count_ws_command(std::string_view type);
void count_template_render();
nlohmann::json counts_json();
void reset_counts();

}  // namespace dinodia::fakes
