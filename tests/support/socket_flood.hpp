#pragma once
// A hostile client for tests: many idle TCP connections to the agent from chosen loopback
// source addresses (the whole of 127.0.0.0/8 is local, so binding the client socket to
// 127.0.0.N before connect makes each N a different client address).
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::testing {

// Connects to 127.0.0.1:port from `source` (e.g. "127.0.0.7"); -1 on failure.
int connect_from(int port, const std::string& source);

class SocketFlood {
 public:
  explicit SocketFlood(int port) : port_(port) {}
  ~SocketFlood();
  SocketFlood(const SocketFlood&) = delete;
  SocketFlood& operator=(const SocketFlood&) = delete;

  // Opens `n` connections from `source`, each sending `first_bytes` (if any); returns how many
  // connected. Connections are numbered in opening order.
  std::size_t open(std::size_t n, const std::string& source, std::string_view first_bytes = {});
  std::size_t size() const { return fds_.size(); }
  // Whether the server has closed connection `i` (a read returns end of file or an error).
  bool closed_by_server(std::size_t i);
  // How many connections the server has closed so far.
  std::size_t count_closed();
  // Waits until at least `n` connections are closed by the server; false on timeout.
  bool wait_closed(std::size_t n, std::chrono::milliseconds timeout);
  void close_all();

 private:
  int port_;
  std::vector<int> fds_;
  std::vector<bool> closed_;
};

}  // namespace dinodia::testing
