// The Beast/Asio transport against servers that misbehave at the socket level: chunked bodies
// over the size cap, servers that accept and never answer, bodies cut off mid-way, name lookup
// failures, certificates for another name, and the Supervisor's bearer token.
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "platform_client/transport.hpp"
#include "tests/support/local_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/time_scale.hpp"
#include "tests/support/transport_options.hpp"

using namespace dinodia::platform_client;
using dinodia::testing::fast_transport_options;
using dinodia::testing::LocalServer;
using dinodia::testing::make_cert;
using dinodia::testing::TempDir;
using dinodia::testing::TestCert;
using dinodia::testing::tls_transport_options;
using namespace std::chrono_literals;

namespace {

// A TCP listener on 127.0.0.1 that runs `script` on each accepted socket: for byte-exact
// responses no HTTP server library would send. The script must return once `stopping` is set.
class RawServer {
 public:
  using Script = std::function<void(int fd, const std::atomic<bool>& stopping)>;
  explicit RawServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~RawServer() {
    stopping_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url(const std::string& scheme, const std::string& path) const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++accepted_;
      script_(fd, stopping_);
      ::close(fd);
    }
  }
  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Reads the request head (the tests send GETs, which have no body), so closing afterwards
// sends a FIN rather than a reset for unread bytes.
void read_request_head(int fd) {
  std::string seen;
  char buf[4096];
  while (seen.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    seen.append(buf, static_cast<std::size_t>(n));
  }
}

void send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

RawServer::Script answer_with(std::string bytes) {
  return [bytes](int fd, const std::atomic<bool>&) {
    read_request_head(fd);
    send_all(fd, bytes);
    ::shutdown(fd, SHUT_WR);
  };
}

// Byte i of the test bodies, so a misplaced or repeated piece shows.
char pattern(std::size_t i) {
  return static_cast<char>('a' + (i * 7 + i / 4093) % 26);
}

std::string pattern_text(std::size_t from, std::size_t size) {
  std::string out(size, ' ');
  for (std::size_t i = 0; i < size; ++i) out[i] = pattern(from + i);
  return out;
}

}  // namespace

TEST_CASE("a chunked body is reassembled whole below the cap", "[transport]") {
  LocalServer server;
  const std::size_t total = 300 * 1024 + 17;
  server.http().Get("/chunked", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-dinodia-api-backend", "vercel");
    res.set_header("Date", "Tue, 14 Nov 2023 22:13:20 GMT");
    res.set_chunked_content_provider(
        "application/json", [&](size_t offset, httplib::DataSink& sink) {
          // Uneven chunk sizes, so chunk and read boundaries never line up.
          std::size_t size = std::min<std::size_t>(1000 + offset % 7919, total - offset);
          sink.write(pattern_text(offset, size).data(), size);
          if (offset + size == total) sink.done();
          return true;
        });
  });
  server.start();
  HttpResult r = make_http_transport(fast_transport_options())->get(server.url("http", "/chunked"));
  CHECK(r.error.empty());
  CHECK(r.status == 200);
  CHECK_FALSE(r.truncated);
  CHECK(r.body.size() == total);
  CHECK(r.body == pattern_text(0, total));
  CHECK(r.backend == "vercel");
  CHECK(r.date_unix == 1700000000);
}

TEST_CASE("an endless chunked body is cut at the cap without reading the rest", "[transport]") {
  LocalServer server;
  std::atomic<std::size_t> written{0};
  server.http().Get("/endless", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json",
                                     [&](size_t offset, httplib::DataSink& sink) {
                                       // Bounded so a broken client cannot keep the test running:
                                       // 256 MiB at most.
                                       if (server.stopping || offset >= 256u * 1024 * 1024)
                                         return false;
                                       std::string piece = pattern_text(offset, 64 * 1024);
                                       if (!sink.write(piece.data(), piece.size())) return false;
                                       written += piece.size();
                                       return true;
                                     });
  });
  server.start();
  auto started = std::chrono::steady_clock::now();
  HttpResult r = make_http_transport(fast_transport_options())->get(server.url("http", "/endless"));
  auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 200);
  CHECK(r.error.empty());  // as before: a truncated response still carries its status
  CHECK(r.truncated);
  REQUIRE(r.body.size() == kMaxResponseBytes);
  CHECK(r.body == pattern_text(0, kMaxResponseBytes));
  CHECK(elapsed < 1500ms);  // it stopped at the cap instead of running into the deadline
}

TEST_CASE("a body of exactly the cap is not truncated", "[transport]") {
  RawServer server(
      answer_with("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kMaxResponseBytes) +
                  "\r\n\r\n" + pattern_text(0, kMaxResponseBytes)));
  HttpResult r = make_http_transport(fast_transport_options())->get(server.url("http", "/x"));
  CHECK(r.status == 200);
  CHECK_FALSE(r.truncated);
  CHECK(r.body == pattern_text(0, kMaxResponseBytes));
}

TEST_CASE("a server that accepts and never answers gives a timeout at the total deadline",
          "[transport]") {
  RawServer server([](int, const std::atomic<bool>& stopping) {
    while (!stopping) std::this_thread::sleep_for(20ms);
  });
  auto transport = make_http_transport(fast_transport_options());
  // Plain HTTP waits for the response head; HTTPS waits in the TLS handshake.
  for (const char* scheme : {"http", "https"}) {
    INFO(scheme);
    auto started = std::chrono::steady_clock::now();
    HttpResult r = transport->get(server.url(scheme, "/never"));
    auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK(r.status == 0);
    CHECK(r.error == "timeout");
    CHECK(elapsed >= 1900ms);
    // Total deadline (2 s) + 1 s; the second is scaled under emulation, where reading the
    // system's CA certificates before the handshake takes seconds (time_scale.hpp).
    CHECK(elapsed < 2s + dinodia::testing::scaled(1s));
    CHECK(r.latency >= 1900ms);
  }
  CHECK(server.accepted() >= 1);
}

TEST_CASE("a connection closed before the response is complete is a read failure", "[transport]") {
  struct Case {
    const char* name;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"content-length body cut short",
       "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + pattern_text(0, 10)},
      {"chunked body without its last chunk",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
      {"head cut short", "HTTP/1.1 200 OK\r\nContent-Le"},
      {"closed without a byte", ""},
      {"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    RawServer server(answer_with(c.bytes));
    HttpResult r = make_http_transport(fast_transport_options())->get(server.url("http", "/x"));
    CHECK(r.status == 0);
    CHECK(r.error == "read");
    CHECK(r.body.empty());
  }
}

TEST_CASE("a body that ends with the connection is complete", "[transport]") {
  RawServer server(
      answer_with("HTTP/1.1 203 Non-Authoritative Information\r\n"
                  "Connection: close\r\n\r\n" +
                  pattern_text(0, 5000)));
  HttpResult r = make_http_transport(fast_transport_options())->get(server.url("http", "/x"));
  CHECK(r.error.empty());
  CHECK(r.status == 203);
  CHECK(r.body == pattern_text(0, 5000));
}

TEST_CASE("an unresolvable host is a dns failure", "[transport]") {
  // A 70-character label is not a valid DNS name: the resolver refuses it without asking a
  // name server, so the test sends no traffic and does not depend on the network.
  const std::string host = std::string(70, 'x') + ".invalid";
  auto started = std::chrono::steady_clock::now();
  HttpResult r =
      make_http_transport(fast_transport_options())->get("http://" + host + "/api/health");
  CHECK(r.status == 0);
  CHECK(r.error == "dns");
  CHECK(std::chrono::steady_clock::now() - started < 1500ms);
}

TEST_CASE("a refused connection is a connect failure", "[transport]") {
  int port = 0;
  {
    RawServer closed([](int, const std::atomic<bool>&) {});
    port = closed.port();
  }  // the listener is gone: nothing accepts on that port now
  HttpResult r = make_http_transport(fast_transport_options())
                     ->get("http://127.0.0.1:" + std::to_string(port) + "/");
  CHECK(r.status == 0);
  CHECK(r.error == "connect");
}

TEST_CASE("HTTPS checks the certificate against a DNS host name", "[transport][tls]") {
  TempDir dir;
  // "localhost" may resolve to ::1 first, where nothing listens: the transport must go on to
  // 127.0.0.1.
  SECTION("a certificate for another name fails with tls") {
    TestCert cert = make_cert(dir, "other.example", "DNS:other.example");
    LocalServer server(std::make_unique<httplib::SSLServer>(cert.cert.c_str(), cert.key.c_str()));
    server.http().Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{}", "application/json");
    });
    server.start();
    auto options = tls_transport_options();
    options.ca_file = cert.cert;
    HttpResult r = make_http_transport(options)->get(server.url("https", "/ok", "localhost"));
    CHECK(r.status == 0);
    CHECK(r.error == "tls");
  }
  SECTION("a certificate for the name succeeds") {
    TestCert cert = make_cert(dir, "localhost", "DNS:localhost");
    LocalServer server(std::make_unique<httplib::SSLServer>(cert.cert.c_str(), cert.key.c_str()));
    std::string seen_host;
    server.http().Get("/ok", [&](const httplib::Request& req, httplib::Response& res) {
      seen_host = req.get_header_value("Host");
      res.set_content("{\"ok\":true}", "application/json");
    });
    server.start();
    auto options = tls_transport_options();
    options.ca_file = cert.cert;
    HttpResult r = make_http_transport(options)->get(server.url("https", "/ok", "localhost"));
    CHECK(r.error.empty());
    CHECK(r.status == 200);
    CHECK(r.body == "{\"ok\":true}");
    CHECK(seen_host == "localhost:" + std::to_string(server.port()));
  }
}

TEST_CASE("GET sends the path, query and headers and no body", "[transport]") {
  LocalServer server;
  std::string seen_target, seen_agent, seen_accept, seen_type, seen_body, seen_auth;
  server.http().Get("/api/health", [&](const httplib::Request& req, httplib::Response& res) {
    seen_target = req.target;
    seen_agent = req.get_header_value("User-Agent");
    seen_accept = req.get_header_value("Accept");
    seen_type = req.get_header_value("Content-Type");
    seen_auth = req.get_header_value("Authorization");
    seen_body = req.body;
    res.set_content("{}", "application/json");
  });
  server.start();
  TransportOptions options = fast_transport_options();
  options.user_agent.clear();  // empty = the default
  HttpResult r = make_http_transport(options)->get(server.url("http", "/api/health?x=1&y=%20"));
  CHECK(r.status == 200);
  CHECK(seen_target == "/api/health?x=1&y=%20");
  CHECK(seen_agent == default_user_agent());
  CHECK(seen_accept == "application/json");
  CHECK(seen_type.empty());
  CHECK(seen_auth.empty());
  CHECK(seen_body.empty());
}

TEST_CASE("the Supervisor check sends the bearer token and refuses a header break", "[transport]") {
  LocalServer server;
  std::atomic<int> requests{0};
  server.http().Get("/core/api/", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    res.status = req.get_header_value("Authorization") == "Bearer sup-token-1" ? 200 : 401;
    res.set_content("{}", "application/json");
  });
  server.start();
  const std::string url = server.url("http", "/core/api/");
  CHECK(get_with_bearer_token(url, "sup-token-1", fast_transport_options()).status == 200);
  CHECK(get_with_bearer_token(url, "wrong", fast_transport_options()).status == 401);
  CHECK(requests == 2);
  HttpResult r =
      get_with_bearer_token(url, "sup-token-1\r\nX-Injected: 1", fast_transport_options());
  CHECK(r.status == 0);
  CHECK(r.error == "other");
  CHECK(requests == 2);  // nothing was sent
}

TEST_CASE("one transport serves concurrent requests", "[transport]") {
  LocalServer server;
  server.http().Get(R"(/echo/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(20ms);  // overlap the requests
    res.set_content(req.matches[1].str(), "text/plain");
  });
  server.start();
  auto transport = make_http_transport(fast_transport_options());
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const std::string id = std::to_string(t * 100 + i);
        HttpResult r = transport->get(server.url("http", "/echo/" + id));
        if (r.status == 200 && r.body == id) ++right;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(right == 20);
}
