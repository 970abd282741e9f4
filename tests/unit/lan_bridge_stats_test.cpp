// LanBridge::stats(): the counters are exposed nowhere outside the process (the `status`
// command reads only the state database, offline), so they are tested here through the
// library seam: a real LanBridge on a real port, real HTTP and WebSocket clients, and as
// "Home Assistant" a socket that listens but never answers (then one that refuses).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "ha_bridge/bridge.hpp"
#include "ha_bridge/token_registry.hpp"
#include "tests/support/ws_client.hpp"

using namespace dinodia::ha_bridge;
using dinodia::testing::WsClient;
using dinodia::testing::WsEvent;

namespace {

const std::string kHubToken = "stats-hub-token-51d0";

// A TCP listener that never accepts: connections complete in the backlog and then hang.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

TEST_CASE("LanBridge::stats counts requests, rejections, upstream errors and live connections") {
  SilentListener upstream;
  BridgeConfig config;
  config.bind_address = "127.0.0.1";
  config.port = 0;
  config.upstream = parse_upstream_url("http://127.0.0.1:" + std::to_string(upstream.port()));
  config.supervisor_token = "stats-supervisor-token";
  config.upstream_ws_tokens = {"stats-supervisor-token"};
  config.allowed_path_regex = {"^/api/$", "^/api/websocket$"};
  config.upstream_connect_timeout = std::chrono::seconds(10);
  auto tokens = std::make_shared<TokenRegistry>();
  tokens->set_local({kHubToken}, {});
  LanBridge bridge(config, tokens, {});
  bridge.start();
  const int port = bridge.bound_port();

  BridgeStats s = bridge.stats();
  CHECK(s.http_requests == 0);
  CHECK(s.connections_active == 0);
  CHECK(s.ws_sessions == 0);

  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2);
  http.set_read_timeout(5);
  http.set_keep_alive(true);  // one client connection for all requests below

  auto no_token = http.Get("/api/");
  REQUIRE(no_token);
  CHECK(no_token->status == 401);
  auto not_allowed = http.Get("/api/config", {{"Authorization", "Bearer " + kHubToken}});
  REQUIRE(not_allowed);
  CHECK(not_allowed->status == 403);
  s = bridge.stats();
  CHECK(s.http_requests == 2);
  CHECK(s.http_rejected_unauthorized == 1);
  CHECK(s.http_rejected_forbidden == 1);
  CHECK(s.http_upstream_errors == 0);
  // The 401 closed the first connection (an unauthenticated connection is not kept); its
  // session ends on the bridge's thread, maybe after the 403's connection was counted.
  CHECK(eventually([&] { return bridge.stats().connections_active == 1; }));  // the 403's is open

  {
    // Home Assistant never answers the upgrade: the session stays open, counted as active.
    WsClient ws;
    ws.connect(static_cast<std::uint16_t>(port));
    CHECK(eventually([&] { return bridge.stats().ws_sessions_active == 1; }));
    s = bridge.stats();
    CHECK(s.ws_sessions == 1);
    CHECK(s.http_requests == 3);  // the upgrade request is an HTTP request too
    ws.abort();
    CHECK(eventually([&] { return bridge.stats().ws_sessions_active == 0; }));
    CHECK(bridge.stats().ws_sessions == 1);
  }

  // Home Assistant gone (connection refused): 502, counted as an upstream error.
  upstream.close();
  auto refused = http.Get("/api/", {{"Authorization", "Bearer " + kHubToken}});
  REQUIRE(refused);
  CHECK(refused->status == 502);
  s = bridge.stats();
  CHECK(s.http_requests == 4);
  CHECK(s.http_upstream_errors == 1);
  CHECK(s.http_rejected_unauthorized == 1);
  CHECK(s.http_rejected_forbidden == 1);

  http.stop();  // closes the keep-alive connection
  CHECK(eventually([&] { return bridge.stats().connections_active == 0; }));
  bridge.stop(std::chrono::milliseconds(500));
}
