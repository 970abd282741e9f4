// WebSocket session load generator for the benchmark: C concurrent workers, each repeating the
// kiosk's WebSocket step (connect, wait for auth_required, auth, auth_ok,
// config/entity_registry/list, read the result, close) for D seconds. Prints one JSON line:
//   {"sessions":N,"errors":E,"seconds":D,"sessions_per_second":R,"p50_ms":..,"p99_ms":..}
// Usage: ws_sessions <host> <port> <path> <token> <concurrency> <seconds>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
bool contains(const beast::flat_buffer& b, const char* needle) {
  return beast::buffers_to_string(b.data()).find(needle) != std::string::npos;
}

// One session; returns false on any protocol surprise. Socket timeouts bound every read.
bool one_session(asio::io_context& ioc, const tcp::resolver::results_type& ep,
                 const std::string& host, const std::string& path, const std::string& token) {
  websocket::stream<tcp::socket> ws(ioc);
  asio::connect(ws.next_layer(), ep);
  timeval tv{5, 0};
  setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ws.read_message_max(64 * 1024 * 1024);
  ws.handshake(host, path);
  beast::flat_buffer buf;
  ws.read(buf);
  if (!contains(buf, "auth_required")) return false;
  buf.clear();
  ws.write(asio::buffer(R"({"type":"auth","access_token":")" + token + "\"}"));
  ws.read(buf);
  if (!contains(buf, "auth_ok")) return false;
  buf.clear();
  ws.write(asio::buffer(std::string(R"({"id":1,"type":"config/entity_registry/list"})")));
  for (;;) {
    ws.read(buf);
    bool done = contains(buf, "\"result\"") && contains(buf, "\"id\":1");
    buf.clear();
    if (done) break;
  }
  ws.close(websocket::close_code::normal);
  // Drain until the close frame arrives (read returns error::closed).
  beast::error_code ec;
  while (!ec) ws.read(buf, ec);
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s host port path token concurrency seconds\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1], port = argv[2], path = argv[3], token = argv[4];
  const int concurrency = std::atoi(argv[5]);
  const int seconds = std::atoi(argv[6]);
  std::atomic<long> sessions{0}, errors{0};
  std::mutex lat_mutex;
  std::vector<double> latencies;
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> workers;
  for (int i = 0; i < concurrency; ++i) {
    workers.emplace_back([&] {
      asio::io_context ioc;
      tcp::resolver resolver(ioc);
      auto ep = resolver.resolve(host, port);
      std::vector<double> local;
      while (Clock::now() < deadline) {
        auto start = Clock::now();
        bool ok = false;
        try {
          ok = one_session(ioc, ep, host, path, token);
        } catch (const std::exception&) {
          ok = false;
        }
        if (ok) {
          ++sessions;
          local.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        } else {
          ++errors;
        }
      }
      std::lock_guard<std::mutex> lock(lat_mutex);
      latencies.insert(latencies.end(), local.begin(), local.end());
    });
  }
  for (auto& w : workers) w.join();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    if (latencies.empty()) return 0.0;
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  std::printf(
      "{\"sessions\":%ld,\"errors\":%ld,\"seconds\":%d,\"sessions_per_second\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      sessions.load(), errors.load(), seconds, static_cast<double>(sessions.load()) / seconds,
      pct(0.50), pct(0.99));
  return errors.load() > 0 && sessions.load() == 0 ? 1 : 0;
}
