#pragma once
// In-process HTTP(S) servers for unit tests of the platform client: a cpp-httplib server on
// 127.0.0.1 with a random port, and self-signed certificates made at test time.
#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/process.hpp"

namespace dinodia::testing {

// Stopped (and its thread joined) on destruction; handlers that wait may poll `stopping`.
class LocalServer {
 public:
  explicit LocalServer(
      std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>());
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  httplib::Server& http() { return *server_; }
  // Binds a free port and serves on a thread; returns once the server is running.
  void start();
  int port() const { return port_; }
  std::string url(const std::string& scheme, const std::string& path,
                  const std::string& host = "127.0.0.1") const;
  std::atomic<bool> stopping{false};

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

struct TestCert {
  std::string cert, key;  // PEM file paths
};

// A self-signed certificate for `name` with the given subjectAltName (e.g.
// "DNS:localhost,IP:127.0.0.1"), written into `dir` with the openssl command.
TestCert make_cert(const TempDir& dir, const std::string& name, const std::string& san);

}  // namespace dinodia::testing
