#pragma once
// The agent's own access to Home Assistant and the Supervisor (legacy-agent.md §8), as opposed
// to relaying a client's requests:
//   * HaConnection: the long-lived tracker WebSocket (§8.3) with reconnect, back-off + jitter,
//     request/response matching and event delivery;
//   * ws_command_once: a one-shot WebSocket command on a new connection (§8.2, Zigbee routes);
//   * REST helpers: GET /network/info, GET /core/api/states/<id>, POST /core/api/services/...
//
// Every operation has a timeout. Callbacks run on the io_context's threads (never inline from
// the call). No Asio/Beast here: the io_context is only forward-declared.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ha_bridge/ha_client_policy.hpp"
#include "ha_bridge/upstream_target.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::ha_bridge {

struct HaClientConfig {
  UpstreamTarget upstream;
  std::string supervisor_token;        // SUPERVISOR_TOKEN (REST bearer, WS header)
  std::vector<std::string> ws_tokens;  // ws_auth_mode order (legacy §7.3), empties removed
  std::chrono::milliseconds request_timeout{15000};
  std::chrono::milliseconds connect_timeout{10000};
  ReconnectPolicy reconnect;  // the tracker connection's back-off (ha_client_policy.hpp)
};

// `error` is empty on success; then `value` holds the result.
using JsonCallback = std::function<void(std::string error, nlohmann::json value)>;

class HaConnection : public std::enable_shared_from_this<HaConnection> {
 public:
  // Handlers are fixed before start(). on_ready runs after every auth_ok (first connect and
  // each reconnect); on_event receives each `event` object of an `event` message.
  struct Handlers {
    std::function<void()> on_ready;
    std::function<void(const nlohmann::json& event)> on_event;
  };

  static std::shared_ptr<HaConnection> create(boost::asio::io_context& io, HaClientConfig config,
                                              Handlers handlers);
  ~HaConnection();
  HaConnection(const HaConnection&) = delete;
  HaConnection& operator=(const HaConnection&) = delete;

  void start();
  // Closes the socket, cancels timers, fails pending requests ("HA WS stopped"); no reconnect.
  void stop();
  bool ready() const;                 // authenticated and open
  std::uint64_t ready_count() const;  // number of auth_ok so far (tests, status)

  // Sends {id, type, ...payload}. The callback gets the `result` value on success, otherwise
  // the error message (HA's error.message, "HA WS request failed", "HA WS not connected",
  // "HA WS disconnected", "HA WS timeout waiting for <type>").
  void request(std::string type, nlohmann::json payload, JsonCallback callback,
               std::optional<std::chrono::milliseconds> timeout = std::nullopt);

 private:
  struct Impl;
  explicit HaConnection(std::unique_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// One command on a new connection (legacy §8.2). Errors: ha_ws_auth_missing,
// ha_ws_auth_invalid, ha_ws_timeout, ha_ws_closed, ha_ws_result_error[:<message>], or the
// transport's own message (e.g. "Unexpected server response: 502").
void ws_command_once(boost::asio::io_context& io, const HaClientConfig& config, std::string type,
                     nlohmann::json payload, std::chrono::milliseconds timeout,
                     JsonCallback callback);

struct HttpReply {
  int status = 0;
  std::string body;
};
// A raw REST call to the Supervisor with the bearer token. `error` is set for transport
// failures and timeouts only (any HTTP status is a reply).
void supervisor_request(boost::asio::io_context& io, const HaClientConfig& config,
                        const std::string& method, const std::string& target, std::string body,
                        std::chrono::milliseconds timeout,
                        std::function<void(std::string error, HttpReply reply)> callback);

// GET /network/info (2.5 s). The parsed JSON on 2xx; an error otherwise.
void get_network_info(boost::asio::io_context& io, const HaClientConfig& config,
                      JsonCallback callback);
// GET /core/api/states/<entity_id>. The state object on 2xx; an error otherwise.
void get_state(boost::asio::io_context& io, const HaClientConfig& config,
               const std::string& entity_id, JsonCallback callback);
// POST /core/api/services/<domain>/<service>. Errors as legacy §5.6 names them:
// supervisor_token_missing, invalid_service, ha_service_error:<status>[:<trimmed body>].
void call_service(boost::asio::io_context& io, const HaClientConfig& config,
                  const std::string& domain, const std::string& service, const nlohmann::json& data,
                  JsonCallback callback);

// Percent-encodes a path segment like encodeURIComponent.
std::string encode_uri_component(const std::string& text);

}  // namespace dinodia::ha_bridge
