#pragma once
// The agent's long-lived tracker WebSocket to Home Assistant (callbacks, see ha_client.hpp).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ha_client/config.hpp"

namespace dinodia::ha_client {

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

}  // namespace dinodia::ha_client
