#pragma once
// A small blocking WebSocket client for integration tests. Every operation has a deadline; a
// read that times out stays pending, so a later read() picks up the same message (a test can
// ask "nothing within 300 ms?" and then keep using the connection).
// Beast stays in the .cpp so test files compile quickly.
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::testing {

struct WsEvent {
  enum class Kind { message, closed, timeout, error };
  Kind kind = Kind::timeout;
  std::string data;     // message payload, byte-exact
  bool binary = false;  // message only
  int close_code = 0;   // closed only: the peer's code (1005 when it sent none)
  std::string close_reason;
  std::string error;  // error only (e.g. "end of stream", "Connection reset by peer")

  bool is_message() const { return kind == Kind::message; }
  bool is_closed() const { return kind == Kind::closed; }
  // Closed with a close frame, or the connection simply ended.
  bool ended() const { return kind == Kind::closed || kind == Kind::error; }
  std::string describe() const;
};

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // TCP connect + upgrade. Throws std::runtime_error on failure or timeout.
  void connect(std::uint16_t port, const std::string& target = "/api/websocket",
               std::chrono::milliseconds timeout = std::chrono::seconds(5),
               const std::string& host = "127.0.0.1");
  // Shrinks the socket's receive buffer (call before connect) so a client that stops reading
  // pushes back on the sender quickly.
  void set_receive_buffer(int bytes);
  void set_read_limit(std::size_t bytes);

  // Throw std::runtime_error when the write does not complete in time or fails.
  void send_text(std::string_view text,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void send_binary(std::string_view bytes,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void send_json(const nlohmann::json& message) { send_text(message.dump()); }

  WsEvent read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads one message and parses it; throws std::runtime_error naming what came instead.
  nlohmann::json read_json(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until a message with this "id" arrives (others are skipped); throws on anything else.
  nlohmann::json read_result(int id, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // When each ping from the peer arrived. Pings are only seen (and answered with a pong) while
  // a read() runs: a test that stops calling read() plays a peer that never answers pings.
  std::vector<std::chrono::steady_clock::time_point> pings_received() const;

  // Sends a close frame and waits for the peer's close (or the end of the connection).
  void close(int code = 1000, const std::string& reason = "",
             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Drops the TCP connection without a close frame.
  void abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dinodia::testing
