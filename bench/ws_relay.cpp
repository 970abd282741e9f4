// WebSocket relay load generator for the benchmark
// (bench/README.md#websocket-relay-and-events-fan-out). Two workloads, each printing one JSON line:
//
//   ws_relay ping <host> <port> <path> <token> <connections> <seconds> [in_flight]
//     C connections, each authenticated, then {"id":n,"type":"ping"} commands pipelined with
//     `in_flight` (default 8) unanswered at any time; every answer must be {"id":n,"type":"pong"}
//     for the oldest ping outstanding.
//     {"messages":N,"errors":E,"seconds":D,"messages_per_second":R,"p50_ms":..,"p99_ms":..}
//
//   ws_relay fanout <host> <port> <path> <token> <clients> <seconds> <ha_port> <ha_token> [window]
//     N clients each subscribe_events state_changed through the target; a driver connected to the
//     Home Assistant stand-in itself (127.0.0.1:<ha_port>/core/api/websocket) fires
//     fake/fire_state_changed as fast as the clients take the events, with at most `window`
//     (default 8) events not yet delivered to every client. The new state carries the time the
//     event was fired, so each delivery's latency costs a substring search.
//     {"events_fired":F,"events_delivered":N,"errors":E,"seconds":D,"events_per_second":R,
//      "p50_ms":..,"p99_ms":..}
//
// One thread per connection with blocking I/O, as bench/ws_sessions.cpp: the generator stays
// simple and costs every target the same.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Ws = websocket::stream<tcp::socket>;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string_view text_of(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// Connects, upgrades and authenticates; throws on any surprise. Reads time out after 5 s.
void open_authenticated(Ws& ws, const std::string& host, const std::string& port,
                        const std::string& path, const std::string& token) {
  tcp::resolver resolver(ws.get_executor());
  asio::connect(ws.next_layer(), resolver.resolve(host, port));
  ws.next_layer().set_option(tcp::no_delay(true));
  timeval tv{5, 0};
  setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ws.auto_fragment(false);
  ws.read_message_max(64 * 1024 * 1024);
  ws.handshake(host, path);
  beast::flat_buffer buffer;
  ws.read(buffer);
  if (text_of(buffer).find("auth_required") == std::string_view::npos) {
    throw std::runtime_error("no auth_required");
  }
  buffer.clear();
  ws.write(asio::buffer(R"({"type":"auth","access_token":")" + token + "\"}"));
  ws.read(buffer);
  if (text_of(buffer).find("auth_ok") == std::string_view::npos) {
    throw std::runtime_error("no auth_ok");
  }
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<std::size_t>(p * values.size()))];
}

// The stand-in keeps every command it receives for its tests; forget them so a long run does
// not grow it without bound (tests/fakes/fake_ha_ws.cpp, fake/clear_received).
void clear_received(Ws& ws, std::int64_t id) {
  ws.write(asio::buffer(R"({"id":)" + std::to_string(id) + R"(,"type":"fake/clear_received"})"));
}

// One thread per connection, each with its own authenticated stream (as bench/ws_sessions.cpp).
// `body(ws, c, latencies, ready)` runs connection c's workload and counts it in `ready` once it is
// set up; an exception counts one error (and the connection as ready, so nobody waits for it).
class Connections {
 public:
  template <class Body>
  Connections(
      int count, const std::string& host, const std::string& port, const std::string& path,
      const std::string& token, const char* what, Body body, std::function<void()> on_error = [] {})
      : count_(count) {
    for (int c = 0; c < count; ++c) {
      threads_.emplace_back([=, this] {
        std::vector<double> local;
        try {
          asio::io_context ioc;
          Ws ws(ioc);
          open_authenticated(ws, host, port, path, token);
          body(ws, c, local, ready);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "ws_relay: %s %d: %s\n", what, c, e.what());
          ++errors;
          ready.fetch_add(1);
          on_error();
        }
        std::lock_guard lock(mutex_);
        latencies_.insert(latencies_.end(), local.begin(), local.end());
      });
    }
  }
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  void wait_ready() const {
    while (ready.load() < count_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Waits for every connection; the latencies they measured.
  std::vector<double> join() {
    for (auto& t : threads_) t.join();
    return latencies_;
  }

  std::atomic<long> errors{0};
  std::atomic<int> ready{0};

 private:
  int count_;
  std::mutex mutex_;
  std::vector<double> latencies_;
  std::vector<std::thread> threads_;
};

int run_ping(const std::string& host, const std::string& port, const std::string& path,
             const std::string& token, int count, int seconds, int in_flight) {
  std::atomic<long> messages{0};
  std::atomic<bool> go{false};
  Clock::time_point deadline;
  Connections connections(
      count, host, port, path, token, "connection",
      [&](Ws& ws, int c, std::vector<double>& local, std::atomic<int>& ready) {
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        std::vector<std::int64_t> sent_at(static_cast<std::size_t>(in_flight));
        std::int64_t next_id = 1, answered = 1;
        auto send_ping = [&] {
          sent_at[static_cast<std::size_t>(next_id % in_flight)] = now_ns();
          ws.write(asio::buffer(R"({"id":)" + std::to_string(next_id) + R"(,"type":"ping"})"));
          ++next_id;
        };
        for (int i = 0; i < in_flight; ++i) send_ping();
        beast::flat_buffer buffer;
        while (Clock::now() < deadline) {
          ws.read(buffer);
          const std::string expected =
              R"({"id":)" + std::to_string(answered) + R"(,"type":"pong"})";
          if (text_of(buffer) != expected) throw std::runtime_error("unexpected answer");
          buffer.clear();
          local.push_back((now_ns() - sent_at[static_cast<std::size_t>(answered % in_flight)]) /
                          1e6);
          ++answered;
          ++messages;
          send_ping();
        }
        // Drain what is still in flight, then leave cleanly.
        while (answered < next_id) {
          ws.read(buffer);
          buffer.clear();
          ++answered;
        }
        if (c == 0) {
          clear_received(ws, next_id);
          ws.read(buffer);
        }
        ws.close(websocket::close_code::normal);
        beast::error_code ec;
        while (!ec) ws.read(buffer, ec);
      });
  connections.wait_ready();
  deadline = Clock::now() + std::chrono::seconds(seconds);
  go.store(true);
  std::vector<double> latencies = connections.join();
  const long errors = connections.errors.load();
  std::printf(
      "{\"messages\":%ld,\"errors\":%ld,\"seconds\":%d,\"messages_per_second\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      messages.load(), errors, seconds, static_cast<double>(messages.load()) / seconds,
      percentile(latencies, 0.50), percentile(latencies, 0.99));
  return errors > 0 && messages.load() == 0 ? 1 : 0;
}

// The time the driver put into the event's new state ("state":"<ns>"), or -1.
std::int64_t fired_at(std::string_view frame) {
  const auto new_state = frame.find("\"new_state\":");
  if (new_state == std::string_view::npos) return -1;
  constexpr std::string_view kState = "\"state\":\"";
  const auto state = frame.find(kState, new_state);
  if (state == std::string_view::npos) return -1;
  return std::strtoll(frame.data() + state + kState.size(), nullptr, 10);
}

// The stand-in updates sensor.bench_fanout and sends state_changed to every subscription.
void fire(Ws& driver, long id, std::int64_t state) {
  driver.write(asio::buffer(
      R"({"id":)" + std::to_string(id) +
      R"(,"type":"fake/fire_state_changed","entity_id":"sensor.bench_fanout","state":")" +
      std::to_string(state) + "\"}"));
}

int run_fanout(const std::string& host, const std::string& port, const std::string& path,
               const std::string& token, int clients, int seconds, const std::string& ha_port,
               const std::string& ha_token, int window) {
  std::atomic<long> delivered{0};
  Connections subscribers(
      clients, host, port, path, token, "client",
      [&](Ws& ws, int, std::vector<double>& local, std::atomic<int>& ready) {
        ws.write(asio::buffer(
            std::string(R"({"id":1,"type":"subscribe_events","event_type":"state_changed"})")));
        beast::flat_buffer buffer;
        ws.read(buffer);
        if (text_of(buffer).find("\"success\":true") == std::string_view::npos) {
          throw std::runtime_error("subscribe_events failed");
        }
        buffer.clear();
        ready.fetch_add(1);
        for (;;) {
          ws.read(buffer);
          const std::int64_t at = fired_at(text_of(buffer));
          buffer.clear();
          if (at == 0) break;  // the driver's last event
          if (at < 0) throw std::runtime_error("not a state_changed event");
          local.push_back((now_ns() - at) / 1e6);
          delivered.fetch_add(1);
          delivered.notify_one();
        }
        ws.close(websocket::close_code::normal);
        beast::error_code ec;
        while (!ec) ws.read(buffer, ec);
      },
      [&] { delivered.notify_one(); });  // the driver stops on an error
  std::atomic<long>& errors = subscribers.errors;
  subscribers.wait_ready();

  long fired = 0;
  long delivered_in_time = 0;
  try {
    asio::io_context ioc;
    Ws driver(ioc);
    open_authenticated(driver, "127.0.0.1", ha_port, "/core/api/websocket", ha_token);
    beast::flat_buffer buffer;
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
      // At most `window` events not yet delivered to every client.
      const long need = static_cast<long>(clients) * (fired - window);
      for (long seen = delivered.load(); seen < need && errors.load() == 0;
           seen = delivered.load()) {
        delivered.wait(seen);
      }
      if (errors.load() > 0) break;
      ++fired;
      fire(driver, fired, now_ns());
      // The results are not waited for; they are read as they come so the stand-in never
      // queues them.
      while (driver.next_layer().available() > 0) {
        driver.read(buffer);
        buffer.clear();
      }
    }
    delivered_in_time = delivered.load();
    fire(driver, fired + 1, 0);  // tells the clients to stop
    clear_received(driver, fired + 2);
    driver.close(websocket::close_code::normal);
    beast::error_code ec;
    while (!ec) driver.read(buffer, ec);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_relay fanout: driver: %s\n", e.what());
    ++errors;
  }
  std::vector<double> latencies = subscribers.join();
  if (delivered.load() != fired * clients) ++errors;
  std::printf(
      "{\"events_fired\":%ld,\"events_delivered\":%ld,\"errors\":%ld,\"seconds\":%d,"
      "\"events_per_second\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      fired, delivered.load(), errors.load(), seconds,
      static_cast<double>(delivered_in_time) / seconds, percentile(latencies, 0.50),
      percentile(latencies, 0.99));
  return errors.load() > 0 && delivered.load() == 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "ping" && (argc == 8 || argc == 9)) {
    return run_ping(argv[2], argv[3], argv[4], argv[5], std::atoi(argv[6]), std::atoi(argv[7]),
                    argc == 9 ? std::max(1, std::atoi(argv[8])) : 8);
  }
  if (mode == "fanout" && (argc == 10 || argc == 11)) {
    return run_fanout(argv[2], argv[3], argv[4], argv[5], std::atoi(argv[6]), std::atoi(argv[7]),
                      argv[8], argv[9], argc == 11 ? std::max(1, std::atoi(argv[10])) : 8);
  }
  std::fprintf(stderr,
               "usage: %s ping host port path token connections seconds [in_flight]\n"
               "       %s fanout host port path token clients seconds ha_port ha_token [window]\n",
               argv[0], argv[0]);
  return 2;
}
