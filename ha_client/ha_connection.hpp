#pragma once
// The agent's long-lived tracker WebSocket to Home Assistant (callbacks, see ha_client.hpp).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ha_client/config.hpp"

namespace dinodia::ha_client {

class HaConnection : public std::enable_shared_from_this<HaConnection> {
 public:
  // Handlers are fixed before start(). on_ready runs after every auth_ok (first connect and
  // each reconnect); on_event receives each `event` object of an `event` message.
  struct Handlers {
    std::function<void()> on_ready;
    std::function<void(const nlohmann::json& event)> on_event;
    // Optional. Sees each text frame before it is parsed; true: the frame needs no parsing (a
    // reader that only looks for a few bytes in large, frequent event frames).
    std::function<bool(std::string_view frame)> on_frame;
    // Optional. A connection that was ready is lost (or stopped); on_ready follows a reconnect.
    std::function<void()> on_lost;
    // What the log calls this connection; empty: the usage tracker's (its 0.4.17 lines).
    std::string name;
  };

  static std::shared_ptr<HaConnection> create(boost::asio::io_context& io, HaClientConfig config,
                                              Handlers handlers);
  ~HaConnection();
  HaConnection(const HaConnection&) = delete;
  HaConnection& operator=(const HaConnection&) = delete;

  void start();
  // Closes the socket, cancels timers, fails pending requests ("HA WS stopped"); no reconnect.
  void stop();
  // stop(), and returns once it has run on the connection's loop: every pending request's
  // callback has then been called and released. Callbacks that hold their owner would otherwise
  // keep it, and this connection, alive when the loop stops first: a cycle nothing frees
  // (docs/architecture.md#shutdown). Waits at most `wait` (a loop that no longer runs); on the
  // connection's own loop thread it only stops, as waiting there would block what it waits for.
  // True once the stop has run.
  bool stop_and_wait(std::chrono::milliseconds wait);
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
