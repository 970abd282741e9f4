#include "tests/support/local_server.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>

namespace dinodia::testing {

LocalServer::LocalServer(std::unique_ptr<httplib::Server> server) : server_(std::move(server)) {}

LocalServer::~LocalServer() {
  stopping = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void LocalServer::start() {
  port_ = server_->bind_to_any_port("127.0.0.1");
  REQUIRE(port_ > 0);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

std::string LocalServer::url(const std::string& scheme, const std::string& path,
                             const std::string& host) const {
  return scheme + "://" + host + ":" + std::to_string(port_) + path;
}

TestCert make_cert(const TempDir& dir, const std::string& name, const std::string& san) {
  TestCert c{dir.file(name + ".crt"), dir.file(name + ".key")};
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + name +
                    " -addext subjectAltName=" + san + " -keyout " + c.key + " -out " + c.cert +
                    " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return c;
}

}  // namespace dinodia::testing
