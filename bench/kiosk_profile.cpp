// Kiosk load profile (docs/platform-protocol.md#apps): K simulated kiosks, each running the
// 1-second Home-mode cycle for D seconds over one keep-alive HTTP connection plus one short
// WebSocket:
//   GET /api/  →  GET /api/states  →  POST /api/template  →  WS config/entity_registry/list
// A kiosk starts its next cycle one second after the previous one started (or at once if the
// cycle took longer, as the apps de-duplicate refreshes in flight).
//
// Several targets (direct, nginx, agent) are measured in the SAME run, interleaved cycle by
// cycle: kiosk k runs its cycle c against target (k + c) mod N. The load stays K cycles a
// second, and every target sees the same machine at the same moments, so a comparison between
// targets is not skewed by whatever else the (shared, virtual) machine did during one block.
// Prints one JSON object: per target, cycles, errors, and p50/p99 milliseconds per step.
// Usage: kiosk_profile <kiosks> <seconds> <name>=<host>:<port>:<api_prefix>:<ws_path>:<token>...
//   api_prefix is empty for the agent and nginx ("/api/..."), "/core" for direct access.
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
// The kiosk's template iterates every state; the stand-in renders it.
constexpr const char* kTemplateBody =
    R"({"template":"[{% for s in states %}{\"entity_id\":\"{{ s.entity_id }}\",\"area\":{{ area_name(s.entity_id) | tojson }},\"device_id\":{{ device_id(s.entity_id) | tojson }},\"labels\":{{ labels(s.entity_id) | map('label_name') | list | tojson }}}{% if not loop.last %},{% endif %}{% endfor %}]"})";

struct Config {
  std::string host, port, prefix, ws_path, token;
};

void set_timeouts(tcp::socket& s) {
  timeval tv{10, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

class Kiosk {
 public:
  Kiosk(const Config& c, asio::io_context& ioc) : c_(c), ioc_(ioc), socket_(ioc) {}

  // Runs one HTTP request on the keep-alive connection; reconnects if the server closed it.
  bool request(http::verb verb, const std::string& path, const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!socket_.is_open()) {
          tcp::resolver r(ioc_);
          asio::connect(socket_, r.resolve(c_.host, c_.port));
          set_timeouts(socket_);
        }
        http::request<http::string_body> req{verb, c_.prefix + path, 11};
        req.set(http::field::host, c_.host);
        req.set(http::field::authorization, "Bearer " + c_.token);
        req.set(http::field::content_type, "application/json");
        if (!body.empty()) req.body() = body;
        req.prepare_payload();
        http::write(socket_, req);
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::read(socket_, buf, parser);
        auto& res = parser.get();
        if (!res.keep_alive()) socket_.close();
        return res.result_int() >= 200 && res.result_int() < 300;
      } catch (const std::exception&) {
        beast::error_code ignored;
        socket_.close(ignored);
      }
    }
    return false;
  }

  bool websocket_step() {
    try {
      websocket::stream<tcp::socket> ws(ioc_);
      tcp::resolver r(ioc_);
      asio::connect(ws.next_layer(), r.resolve(c_.host, c_.port));
      set_timeouts(ws.next_layer());
      ws.read_message_max(64 * 1024 * 1024);
      ws.handshake(c_.host, c_.ws_path);
      beast::flat_buffer buf;
      ws.read(buf);  // auth_required
      buf.clear();
      ws.write(asio::buffer(R"({"type":"auth","access_token":")" + c_.token + "\"}"));
      ws.read(buf);
      if (beast::buffers_to_string(buf.data()).find("auth_ok") == std::string::npos) return false;
      buf.clear();
      ws.write(asio::buffer(std::string(R"({"id":1,"type":"config/entity_registry/list"})")));
      for (;;) {
        ws.read(buf);
        std::string m = beast::buffers_to_string(buf.data());
        buf.clear();
        if (m.find("\"result\"") != std::string::npos) {
          ws.close(websocket::close_code::normal);
          beast::error_code ec;
          while (!ec) ws.read(buf, ec);
          return m.find("\"success\":true") != std::string::npos;
        }
      }
    } catch (const std::exception&) {
      return false;
    }
  }

 private:
  const Config& c_;
  asio::io_context& ioc_;
  tcp::socket socket_;
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Target {
  std::string name;
  Config config;
};

// "<name>=<host>:<port>:<api_prefix>:<ws_path>:<token>"; the prefix may be empty.
bool parse_target(const std::string& arg, Target& out) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  out.name = arg.substr(0, eq);
  std::vector<std::string> parts;
  std::stringstream rest(arg.substr(eq + 1));
  for (std::string part; std::getline(rest, part, ':');) parts.push_back(part);
  if (parts.size() != 5) return false;
  out.config = Config{parts[0], parts[1], parts[2], parts[3], parts[4]};
  return true;
}

struct Samples {
  std::map<std::string, std::vector<double>> latencies;
  long cycles = 0;
  long errors = 0;
};
}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets;
  for (int i = 3; i < argc; ++i) {
    Target t;
    if (!parse_target(argv[i], t)) {
      std::fprintf(stderr, "bad target: %s\n", argv[i]);
      return 2;
    }
    targets.push_back(t);
  }
  if (argc < 4 || targets.empty()) {
    std::fprintf(stderr, "usage: %s kiosks seconds name=host:port:api_prefix:ws_path:token...\n",
                 argv[0]);
    return 2;
  }
  const int kiosks = std::atoi(argv[1]);
  const int seconds = std::atoi(argv[2]);
  const char* steps[] = {"api", "states", "template", "websocket"};
  const std::size_t n = targets.size();
  std::mutex mutex;
  std::vector<Samples> merged(n);
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int k = 0; k < kiosks; ++k) {
    threads.emplace_back([&, k] {
      asio::io_context ioc;
      std::vector<std::unique_ptr<Kiosk>> per_target;  // one keep-alive connection per target
      for (const auto& t : targets) per_target.push_back(std::make_unique<Kiosk>(t.config, ioc));
      std::vector<Samples> local(n);
      // Spread the kiosks over the second, as real ones are not synchronised.
      std::this_thread::sleep_for(std::chrono::milliseconds(1000 * k / std::max(kiosks, 1)));
      for (std::size_t cycle = 0; Clock::now() < deadline; ++cycle) {
        const std::size_t which = (static_cast<std::size_t>(k) + cycle) % n;
        Kiosk& kiosk = *per_target[which];
        Samples& out = local[which];
        auto cycle_start = Clock::now();
        bool ok = true;
        auto t = Clock::now();
        ok &= kiosk.request(http::verb::get, "/api/", "");
        out.latencies["api"].push_back(ms_since(t));
        t = Clock::now();
        ok &= kiosk.request(http::verb::get, "/api/states", "");
        out.latencies["states"].push_back(ms_since(t));
        t = Clock::now();
        ok &= kiosk.request(http::verb::post, "/api/template", kTemplateBody);
        out.latencies["template"].push_back(ms_since(t));
        t = Clock::now();
        ok &= kiosk.websocket_step();
        out.latencies["websocket"].push_back(ms_since(t));
        ++out.cycles;
        if (!ok) ++out.errors;
        std::this_thread::sleep_until(cycle_start + std::chrono::seconds(1));
      }
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t i = 0; i < n; ++i) {
        merged[i].cycles += local[i].cycles;
        merged[i].errors += local[i].errors;
        for (auto& [step, v] : local[i].latencies) {
          auto& all = merged[i].latencies[step];
          all.insert(all.end(), v.begin(), v.end());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  long errors = 0;
  std::printf("{\"kiosks\":%d,\"seconds\":%d,\"targets\":{", kiosks, seconds);
  for (std::size_t i = 0; i < n; ++i) {
    const Samples& s = merged[i];
    errors += s.errors;
    std::printf("%s\"%s\":{\"cycles\":%ld,\"errors\":%ld", i ? "," : "", targets[i].name.c_str(),
                s.cycles, s.errors);
    for (const char* step : steps) {
      auto it = s.latencies.find(step);
      std::vector<double> v = it == s.latencies.end() ? std::vector<double>{} : it->second;
      std::sort(v.begin(), v.end());
      auto pct = [&](double p) {
        return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
      };
      std::printf(",\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f", step, pct(0.5), step, pct(0.99));
    }
    std::printf("}");
  }
  std::printf("}}\n");
  return errors > 0 ? 1 : 0;
}
