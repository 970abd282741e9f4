#pragma once
// A raw TCP client for tests that must send bytes no HTTP library would (hostile input,
// half-written requests, trickled headers) or watch exactly when a server closes.
#include <chrono>
#include <string>
#include <string_view>

namespace dinodia::testing {

class RawSocket {
 public:
  // Connects to 127.0.0.1:port (or `host`), from `source` when given (a client address such as
  // 127.0.0.7); throws std::runtime_error on failure.
  explicit RawSocket(int port, const std::string& host = "127.0.0.1",
                     const std::string& source = "");
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Sends all bytes; false if the peer is gone.
  bool send(std::string_view bytes);
  // Reads until the peer closes or `timeout` passes; returns everything read. peer_closed()
  // tells which of the two happened.
  std::string read_until_close(std::chrono::milliseconds timeout);
  // Reads until `needle` has been seen (or close/timeout); returns everything read so far,
  // including bytes after the needle that arrived in the same read.
  std::string read_until(std::string_view needle, std::chrono::milliseconds timeout);
  // Reads one HTTP response with a Content-Length body (or until close); returns it whole.
  std::string read_response(std::chrono::milliseconds timeout);
  bool peer_closed() const { return peer_closed_; }
  void shutdown_write();
  void close();

 private:
  // One poll+recv; appends to `out`. Returns false on close/error/timeout.
  bool read_some(std::string& out, std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  bool peer_closed_ = false;
  std::string pending_;  // bytes read past the end of the last response
};

}  // namespace dinodia::testing
