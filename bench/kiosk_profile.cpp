// The apps' Home-mode load, as the real apps generate it (docs/platform-protocol.md#apps;
// bench/README.md#kiosk-relief). Each behaviour below names the app file it comes from
// (nivedit1998/dinodia-kiosk and nivedit1998/dinodiasmartliving-ios).
//
// Kiosk (Android, React Native 0.76), K of them:
//   * src/store/deviceStore.ts: in Home mode a refresh on mount, then setInterval(1000 ms). A
//     tick that finds the refresh still in flight reuses it (the inFlight map), so no new
//     request starts: the next refresh starts on the next 1-second tick after it ends
//     ("overruns" counts the ticks that found one in flight).
//   * src/api/dinodia.ts fetchDevicesForUser: probeHaReachability (GET /api/, 2 s timeout; no
//     answer ends the refresh), then src/api/ha.ts getDevicesWithMetadata: GET /api/states, then
//     POST /api/template with the app's template text (kTemplate), then, when the template failed
//     or any entry lacks a device_id, src/api/haRegistry.ts fetchEntityToDeviceMap: one
//     WebSocket session (src/api/haWebSocket.ts haWsCall: connect, auth_required → auth,
//     auth_ok → {"id":1,"type":"config/entity_registry/list"}, result → close()).
//   * Headers (src/api/ha.ts): the probe sends Authorization only; callHomeAssistantAPI sends
//     Authorization and Content-Type: application/json on every call, GET included. OkHttp (React
//     Native's Android networking) adds Host, Connection: Keep-Alive, Accept-Encoding: gzip and
//     User-Agent: okhttp/4.9.2; React Native's WebSocket adds an Origin of the server's URL.
//   * src/components/DeviceDetail.tsx: while a Doorbell / Home Security detail view is open, its
//     image loads /api/camera_proxy/<id>?ts=<ms> at once and again every 15 s (Authorization
//     only). --camera-viewers=N opens one on the first N kiosks for the whole run.
// iPhone (Dinodia/*.swift), --iphones=N of them, each with two independent loops:
//   * SessionStore.swift restartHomeNetworkPollingIfNeeded: HAService.probeHaReachability
//     (GET /api/), then sleep 5 s, for ever ("ios_probe").
//   * DeviceStore.swift: a refresh at start, then Timer every 12 s; DinodiaService.swift
//     fetchDevicesForUser: probe (GET /api/), then HAService.swift getDevicesWithMetadata:
//     GET /api/states, POST /api/template with the same template text (JSONSerialization
//     writes the same body bytes as JSON.stringify here). No WebSocket.
//   * HAService.swift makeRequest: Authorization and Content-Type: application/json on every
//     call, the probe included. URLSession adds Host, Accept, Accept-Language, Accept-Encoding and
//     its User-Agent.
// Platform calls the apps make around these (kiosk context, home-mode secrets) do not reach
// Home Assistant and are left out.
//
// Targets: kiosk k runs its refresh c via target (k + c) mod N (an iPhone likewise), so with
// several targets (bench/run.sh: direct, nginx, agent) each sees the same machine at the same
// moments; bench/relief.sh gives one target per run.
//
// Freshness (--events-per-second=R --fake=host:port): a publisher POSTs a state_changed for
// --seq-entity (default sensor.relief_seq) to the stand-in's /_fake/event R times a second, its
// state a rising number; a change counts as made when the stand-in has answered that POST. Every
// /api/states answer is searched for that entity's state.
//   staleness: per answer, how long before the request was sent the first change it does not
//     show had been made (0 when it shows every change made before the request);
//   first appearance: per change, from the moment it was made to the first answer (any client of
//     that target) showing it or a later one; this includes waiting for the next poll.
// Identical bytes: per step, a digest (FNV-1a of status, Content-Type and body; for the
// WebSocket, every frame received) → count; bench/relief.sh compares them with direct's.
//
// Prints one JSON object: per target, cycles, errors, overruns, p50/p99 ms per step, the
// freshness figures and the digests.
// Usage: kiosk_profile [--iphones=N] [--camera-viewers=N] [--camera=ENTITY]
//          [--events-per-second=R --fake=HOST:PORT] [--seq-entity=ENTITY]
//          <kiosks> <seconds> <name>=<host>:<port>:<api_prefix>:<ws_path>:<token>...
//   api_prefix is empty for the agent and nginx ("/api/..."), "/core" for direct access.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace {

// src/api/ha.ts getDevicesWithMetadata (and HAService.swift getDevicesWithMetadata), verbatim.
constexpr const char* kTemplate = R"({% set ns = namespace(result=[]) %}
{% for s in states %}
  {% set item = {
    "entity_id": s.entity_id,
    "area_name": area_name(s.entity_id),
    "device_id": device_id(s.entity_id),
    "labels": (labels(s.entity_id) | map('label_name') | list)
  } %}
  {% set ns.result = ns.result + [item] %}
{% endfor %}
{{ ns.result | tojson }})";

const Headers kOkHttp = {
    {"Connection", "Keep-Alive"}, {"Accept-Encoding", "gzip"}, {"User-Agent", "okhttp/4.9.2"}};
const Headers kUrlSession = {{"Accept", "*/*"},
                             {"Accept-Language", "en-GB,en;q=0.9"},
                             {"Accept-Encoding", "gzip, deflate, br"},
                             {"User-Agent", "Dinodia/1 CFNetwork/1568.100.1 Darwin/24.0.0"},
                             {"Connection", "keep-alive"}};

// How an app names its steps and which headers it sends ("Authorization" is filled in with the
// target's token).
struct App {
  const char *api, *states, *tmpl;
  Headers probe, call;
  const Headers* defaults;
  bool probe_needs_2xx;  // the kiosk goes on after any answer (ha.ts: `return res.status > 0`)
};
const App kKiosk = {"api",
                    "states",
                    "template",
                    {{"Authorization", ""}},
                    {{"Authorization", ""}, {"Content-Type", "application/json"}},
                    &kOkHttp,
                    false};
const App kIphone = {"ios_api",
                     "ios_states",
                     "ios_template",
                     {{"Authorization", ""}, {"Content-Type", "application/json"}},
                     {{"Authorization", ""}, {"Content-Type", "application/json"}},
                     &kUrlSession,
                     true};

struct Config {
  std::string host, port, prefix, ws_path, token;
};

struct Target {
  std::string name;
  Config config;
};

struct Options {
  int iphones = 0;
  int camera_viewers = 0;
  std::string camera = "camera.device_5";
  double events_per_second = 0;
  std::string fake_host, fake_port;
  std::string seq_entity = "sensor.relief_seq";
};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
constexpr std::uint64_t kFnvBasis = 14695981039346656037ull;

void set_timeouts(tcp::socket& s, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct Answer {
  bool ok = false;  // a 2xx answer
  int status = 0;   // 0: no answer
  std::uint64_t digest = 0;
  std::string body;
  // When the app has its answer, if before the call returns (a WebSocket session's close comes
  // after it); unset: when the call returns.
  std::optional<Clock::time_point> answered_at;
};

// One client's keep-alive HTTP connection to one target.
class Connection {
 public:
  Connection(const Config& c, asio::io_context& ioc) : c_(c), ioc_(ioc), socket_(ioc) {}

  Answer request(http::verb verb, const std::string& path, const Headers& headers,
                 const Headers& defaults, const std::string& body, int timeout_s) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!socket_.is_open()) {
          tcp::resolver r(ioc_);
          asio::connect(socket_, r.resolve(c_.host, c_.port));
        }
        set_timeouts(socket_, timeout_s);
        http::request<http::string_body> req{verb, c_.prefix + path, 11};
        req.set(http::field::host, c_.host + ":" + c_.port);
        for (const auto& [name, value] : headers) {
          req.set(name, name == "Authorization" ? "Bearer " + c_.token : value);
        }
        for (const auto& [name, value] : defaults) req.set(name, value);
        if (!body.empty()) req.body() = body;
        req.prepare_payload();
        http::write(socket_, req);
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::read(socket_, buf, parser);
        auto& res = parser.get();
        if (!res.keep_alive()) socket_.close();
        Answer a;
        a.status = static_cast<int>(res.result_int());
        a.ok = a.status >= 200 && a.status < 300;
        std::uint64_t h = fnv1a(kFnvBasis, std::to_string(res.result_int()));
        h = fnv1a(h, res[http::field::content_type]);
        a.digest = fnv1a(h, res.body());
        a.body = std::move(res.body());
        return a;
      } catch (const std::exception&) {
        beast::error_code ignored;
        socket_.close(ignored);
      }
    }
    return {};
  }

  // src/api/haWebSocket.ts haWsCall(ha, type): the answer counts once the result has arrived;
  // the close that follows is not timed (the app resolves its promise first: `finish` calls
  // ws.close(), which does not wait, then resolve). Until 2026-12-08 it was timed.
  Answer ws_call(const std::string& type) {
    Answer a;
    try {
      websocket::stream<tcp::socket> ws(ioc_);
      tcp::resolver r(ioc_);
      asio::connect(ws.next_layer(), r.resolve(c_.host, c_.port));
      set_timeouts(ws.next_layer(), 15);  // haWsCall's timeoutMs
      ws.read_message_max(64 * 1024 * 1024);
      const std::string origin = "http://" + c_.host + ":" + c_.port;
      ws.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
        req.set(http::field::origin, origin);
        req.set(http::field::user_agent, "okhttp/4.9.2");
      }));
      ws.handshake(c_.host + ":" + c_.port, c_.ws_path);
      std::uint64_t h = kFnvBasis;
      beast::flat_buffer buf;
      auto next = [&] {
        buf.clear();
        ws.read(buf);
        std::string m = beast::buffers_to_string(buf.data());
        h = fnv1a(h, m);
        return m;
      };
      if (next().find("\"auth_required\"") == std::string::npos) return a;
      ws.write(asio::buffer(R"({"type":"auth","access_token":")" + c_.token + "\"}"));
      if (next().find("\"auth_ok\"") == std::string::npos) return a;
      ws.write(asio::buffer(R"({"id":1,"type":")" + type + "\"}"));
      for (;;) {
        const std::string m = next();
        const auto parsed = nlohmann::json::parse(m, nullptr, false);
        if (parsed.is_object() && parsed.value("id", 0) == 1) {
          a.answered_at = Clock::now();  // haWsCall resolves here, then closes
          a.ok = parsed.value("success", false);
          a.digest = h;
          break;
        }
      }
      beast::error_code ec;
      ws.close(websocket::close_code::normal, ec);  // React Native's close(): code 1000
      while (!ec) ws.read(buf, ec);
    } catch (const std::exception&) {
      a.ok = false;
    }
    return a;
  }

 private:
  const Config& c_;
  asio::io_context& ioc_;
  tcp::socket socket_;
};

// What one target's clients saw.
struct Samples {
  std::map<std::string, std::vector<double>> latencies;
  std::map<std::string, std::map<std::uint64_t, long>> digests;
  struct Seen {
    Clock::time_point sent, received;
    long long value;
  };
  std::vector<Seen> seen;  // /api/states answers: the sequence entity's state
  long cycles = 0, errors = 0, overruns = 0, ios_cycles = 0, ios_errors = 0;

  void merge(Samples&& o) {
    cycles += o.cycles;
    errors += o.errors;
    overruns += o.overruns;
    ios_cycles += o.ios_cycles;
    ios_errors += o.ios_errors;
    for (auto& [step, v] : o.latencies) {
      auto& all = latencies[step];
      all.insert(all.end(), v.begin(), v.end());
    }
    for (auto& [step, m] : o.digests) {
      for (auto& [d, n] : m) digests[step][d] += n;
    }
    seen.insert(seen.end(), o.seen.begin(), o.seen.end());
  }
};

// The state of `entity` in a Home Assistant states array (keys in the order Core's stand-in
// writes them: entity_id before state); -1 when absent or not a number.
long long state_value(const std::string& body, const std::string& entity) {
  const std::string key = "\"entity_id\":\"" + entity + "\"";
  const auto at = body.find(key);
  if (at == std::string::npos) return -1;
  const auto s = body.find("\"state\":\"", at);
  const auto end_of_object = body.find("},{", at);
  if (s == std::string::npos || (end_of_object != std::string::npos && s > end_of_object)) {
    return -1;
  }
  return std::atoll(body.c_str() + s + 9);
}

class Run {
 public:
  Run(std::vector<Target> targets, Options options, Clock::time_point deadline)
      : targets_(std::move(targets)), o_(std::move(options)), deadline_(deadline) {}

  // One timed step; records latency and digest. Returns the answer.
  template <typename F>
  Answer step(Samples& out, const char* name, F&& f) {
    const auto t = Clock::now();
    Answer a = f();
    const auto done = a.answered_at.value_or(Clock::now());
    out.latencies[name].push_back(ms_between(t, done));
    ++out.digests[name][a.digest];
    return a;
  }

  // The part of a refresh both apps share (src/api/dinodia.ts and src/api/ha.ts;
  // DinodiaService.swift and HAService.swift): the probe, whose failure ends the refresh, the
  // states, the template. The template's answer, or nothing when the refresh ended early.
  std::optional<Answer> probe_states_template(Connection& c, Samples& out, const App& app) {
    const Answer probe = step(out, app.api, [&] {
      return c.request(http::verb::get, "/api/", app.probe, *app.defaults, "", 2);
    });
    if (app.probe_needs_2xx ? !probe.ok : probe.status == 0) return std::nullopt;
    const auto sent = Clock::now();
    const Answer states = step(out, app.states, [&] {
      return c.request(http::verb::get, "/api/states", app.call, *app.defaults, "", 5);
    });
    if (!states.ok) return std::nullopt;
    note_states(out, sent, states.body);
    return step(out, app.tmpl, [&] {
      return c.request(http::verb::post, "/api/template", app.call, *app.defaults, template_body(),
                       5);
    });
  }

  // src/api/dinodia.ts fetchDevicesForUser in Home mode (see the top of the file).
  bool kiosk_refresh(Connection& c, Samples& out) {
    const auto tmpl = probe_states_template(c, out, kKiosk);
    if (!tmpl) return false;
    if (!needs_registry(*tmpl)) return true;
    return step(out, "websocket", [&] { return c.ws_call("config/entity_registry/list"); }).ok;
  }

  // DinodiaService.swift fetchDevicesForUser: the app falls back to no metadata when the template
  // fails.
  bool iphone_refresh(Connection& c, Samples& out) {
    return probe_states_template(c, out, kIphone).has_value();
  }

  // One simulated client: its own connections (one per target), its n-th action through target
  // (index + n) mod N; `act` returns when to act next. What it saw is merged at the end.
  template <typename Act>
  void client(int index, Clock::time_point start, Act act) {
    asio::io_context ioc;
    auto conns = connections(ioc);
    std::vector<Samples> local(targets_.size());
    std::this_thread::sleep_until(start);
    for (std::size_t n = 0; Clock::now() < deadline_; ++n) {
      const std::size_t which = (static_cast<std::size_t>(index) + n) % targets_.size();
      std::this_thread::sleep_until(std::min(act(*conns[which], local[which]), deadline_));
    }
    merge(local);
  }

  void kiosk(int k, Clock::time_point start) {
    std::size_t tick = 0;
    client(k, start, [&](Connection& c, Samples& out) {
      const bool ok = kiosk_refresh(c, out);
      ++out.cycles;
      if (!ok) ++out.errors;
      // setInterval keeps its 1-second grid; ticks that fell inside this refresh joined it.
      const auto next =
          1 + static_cast<std::size_t>((Clock::now() - start) / std::chrono::seconds(1));
      out.overruns += static_cast<long>(next - tick - 1);
      tick = next;
      return start + std::chrono::seconds(tick);
    });
  }

  // src/components/DeviceDetail.tsx: the image at once, then every 15 s, a new ?ts= each time.
  void camera_viewer(int k, Clock::time_point start) {
    client(k, start, [&](Connection& c, Samples& out) {
      const auto t = Clock::now();
      const auto ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
      step(out, "camera", [&] {  // Authorization only, as the probe
        return c.request(http::verb::get,
                         "/api/camera_proxy/" + o_.camera + "?ts=" + std::to_string(ts),
                         kKiosk.probe, kOkHttp, "", 10);
      });
      return t + std::chrono::seconds(15);
    });
  }

  // The first refresh, then Timer(12 s) scheduled once it has ended (DeviceStore.swift init).
  void iphone_refresher(int i, Clock::time_point start) {
    std::optional<Clock::time_point> next;
    client(i, start, [&](Connection& c, Samples& out) {
      const bool ok = iphone_refresh(c, out);
      ++out.ios_cycles;
      if (!ok) ++out.ios_errors;
      next = (next ? *next : Clock::now()) + std::chrono::seconds(12);
      return *next;
    });
  }

  void iphone_prober(int i, Clock::time_point start) {
    client(i, start, [&](Connection& c, Samples& out) {
      step(out, "ios_probe",
           [&] { return c.request(http::verb::get, "/api/", kIphone.call, kUrlSession, "", 4); });
      return Clock::now() + std::chrono::seconds(5);
    });
  }

  // POSTs state_changed events for the sequence entity at the configured rate; records when each
  // was made.
  void publisher() {
    if (o_.events_per_second <= 0) return;
    Config fake{o_.fake_host, o_.fake_port, "", "", ""};
    asio::io_context ioc;
    Connection c(fake, ioc);
    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / o_.events_per_second));
    auto next = Clock::now();
    for (long n = 1; Clock::now() < deadline_; ++n) {
      std::this_thread::sleep_until(next);
      next += period;
      const long long value = seq_base_ + n;
      nlohmann::json state = {{"entity_id", o_.seq_entity},
                              {"state", std::to_string(value)},
                              {"attributes", {{"friendly_name", "Relief sequence"}}},
                              {"last_changed", "2026-12-07T00:00:00+00:00"},
                              {"last_updated", "2026-12-07T00:00:00+00:00"},
                              {"context", {{"id", "seq" + std::to_string(value)}}}};
      nlohmann::json event = {{"event_type", "state_changed"},
                              {"data", {{"entity_id", o_.seq_entity}, {"new_state", state}}},
                              {"origin", "LOCAL"},
                              {"time_fired", "2026-12-07T00:00:00+00:00"}};
      // The stand-in has made the change once it answers (it updates its states before it
      // sends the event and the answer), so the change counts from then: an answer to a request
      // sent later that does not show it is stale, whatever carried it.
      if (c.request(http::verb::post, "/_fake/event", {{"Content-Type", "application/json"}}, {},
                    event.dump(), 5)
              .ok) {
        std::lock_guard lock(mutex_);
        published_.push_back(Clock::now());
      }
    }
  }

  void run(int kiosks) {
    seq_base_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count() *
                100;
    merged_.resize(targets_.size());
    std::vector<std::thread> threads;
    threads.emplace_back([this] { publisher(); });
    // Kiosks spread over the second, as real ones are not synchronised; the iPhones in between.
    const auto t0 = Clock::now();
    for (int k = 0; k < kiosks; ++k) {
      const auto start = t0 + std::chrono::milliseconds(1000 * k / kiosks);
      threads.emplace_back([this, k, start] { kiosk(k, start); });
      if (k < o_.camera_viewers)
        threads.emplace_back([this, k, start] { camera_viewer(k, start); });
    }
    for (int i = 0; i < o_.iphones; ++i) {
      const auto start = t0 + std::chrono::milliseconds(500 + 1000 * i / o_.iphones);
      threads.emplace_back([this, i, start] { iphone_refresher(i, start); });
      threads.emplace_back(
          [this, i, start] { iphone_prober(i, start + std::chrono::milliseconds(200)); });
    }
    for (auto& t : threads) t.join();
  }

  int print(int kiosks, int seconds) const;

 private:
  std::string template_body() const { return nlohmann::json{{"template", kTemplate}}.dump(); }

  // src/api/ha.ts: `meta.length === 0 || meta.some((m) => !m.device_id)`; a failed template is
  // an empty meta.
  static bool needs_registry(const Answer& tmpl) {
    if (!tmpl.ok) return true;
    const auto meta = nlohmann::json::parse(tmpl.body, nullptr, false);
    if (!meta.is_array() || meta.empty()) return true;
    for (const auto& m : meta) {
      if (!m.is_object()) return true;
      const auto it = m.find("device_id");
      if (it == m.end() || !it->is_string() || it->get<std::string>().empty()) return true;
    }
    return false;
  }

  void note_states(Samples& out, Clock::time_point sent, const std::string& body) {
    if (o_.events_per_second <= 0) return;
    out.seen.push_back({sent, Clock::now(), state_value(body, o_.seq_entity)});
  }

  std::vector<std::unique_ptr<Connection>> connections(asio::io_context& ioc) const {
    std::vector<std::unique_ptr<Connection>> out;
    for (const auto& t : targets_) out.push_back(std::make_unique<Connection>(t.config, ioc));
    return out;
  }

  void merge(std::vector<Samples>& local) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < local.size(); ++i) merged_[i].merge(std::move(local[i]));
  }

  std::vector<Target> targets_;
  Options o_;
  Clock::time_point deadline_;
  long long seq_base_ = 0;
  mutable std::mutex mutex_;
  std::vector<Samples> merged_;
  std::vector<Clock::time_point> published_;
};

std::pair<double, double> p50_p99(std::vector<double> v) {
  if (v.empty()) return {0, 0};
  std::sort(v.begin(), v.end());
  auto at = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  return {at(0.5), at(0.99)};
}

int Run::print(int kiosks, int seconds) const {
  const char* steps[] = {"api",     "states",     "template",     "websocket", "camera",
                         "ios_api", "ios_states", "ios_template", "ios_probe"};
  long errors = 0;
  std::printf("{\"kiosks\":%d,\"iphones\":%d,\"seconds\":%d,\"events_published\":%zu,\"targets\":{",
              kiosks, o_.iphones, seconds, published_.size());
  for (std::size_t i = 0; i < merged_.size(); ++i) {
    const Samples& s = merged_[i];
    errors += s.errors + s.ios_errors;
    std::printf(
        "%s\"%s\":{\"cycles\":%ld,\"errors\":%ld,\"overruns\":%ld,\"ios_cycles\":%ld,"
        "\"ios_errors\":%ld",
        i ? "," : "", targets_[i].name.c_str(), s.cycles, s.errors, s.overruns, s.ios_cycles,
        s.ios_errors);
    for (const char* step : steps) {
      auto it = s.latencies.find(step);
      const auto v = it == s.latencies.end() ? std::vector<double>{} : it->second;
      const auto [p50, p99] = p50_p99(v);
      std::printf(",\"%s_n\":%zu,\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f", step, v.size(), step, p50,
                  step, p99);
    }
    // Freshness against the publisher's record (see the top of the file).
    std::vector<double> stale, first;
    auto by_received = s.seen;
    std::sort(by_received.begin(), by_received.end(),
              [](const auto& a, const auto& b) { return a.received < b.received; });
    long long shown_so_far = 0;  // changes 1..shown_so_far have appeared
    for (const auto& seen : by_received) {
      const long long shown = std::max(0LL, seen.value - seq_base_);
      const auto missed = static_cast<std::size_t>(shown);  // index of the first change not shown
      if (missed < published_.size() && published_[missed] < seen.sent) {
        stale.push_back(ms_between(published_[missed], seen.sent));
      } else {
        stale.push_back(0);
      }
      for (; shown_so_far < shown && shown_so_far < static_cast<long long>(published_.size());
           ++shown_so_far) {
        // An answer may show a change before its POST's answer has come back: no wait at all.
        first.push_back(std::max(0.0, ms_between(published_[shown_so_far], seen.received)));
      }
    }
    const auto [st50, st99] = p50_p99(stale);
    const auto [fa50, fa99] = p50_p99(first);
    std::printf(
        ",\"stale_n\":%zu,\"stale_p50_ms\":%.3f,\"stale_p99_ms\":%.3f,\"first_n\":%zu,"
        "\"first_p50_ms\":%.3f,\"first_p99_ms\":%.3f",
        stale.size(), st50, st99, first.size(), fa50, fa99);
    std::printf(",\"digests\":{");
    bool first_step = true;
    for (const auto& [step, m] : s.digests) {
      std::printf("%s\"%s\":{", first_step ? "" : ",", step.c_str());
      first_step = false;
      bool first_digest = true;
      for (const auto& [d, n] : m) {
        std::printf("%s\"%016llx\":%ld", first_digest ? "" : ",",
                    static_cast<unsigned long long>(d), n);
        first_digest = false;
      }
      std::printf("}");
    }
    std::printf("}}");
  }
  std::printf("}}\n");
  return errors > 0 ? 1 : 0;
}

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

bool parse_option(const std::string& arg, Options& o) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return false;
  const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
  if (key == "--iphones") {
    o.iphones = std::atoi(value.c_str());
  } else if (key == "--camera-viewers") {
    o.camera_viewers = std::atoi(value.c_str());
  } else if (key == "--camera") {
    o.camera = value;
  } else if (key == "--events-per-second") {
    o.events_per_second = std::atof(value.c_str());
  } else if (key == "--seq-entity") {
    o.seq_entity = value;
  } else if (key == "--fake") {
    const auto colon = value.rfind(':');
    if (colon == std::string::npos) return false;
    o.fake_host = value.substr(0, colon);
    o.fake_port = value.substr(colon + 1);
  } else {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      if (!parse_option(arg, options)) {
        std::fprintf(stderr, "bad option: %s\n", argv[i]);
        return 2;
      }
    } else {
      positional.push_back(arg);
    }
  }
  std::vector<Target> targets;
  for (std::size_t i = 2; i < positional.size(); ++i) {
    Target t;
    if (!parse_target(positional[i], t)) {
      std::fprintf(stderr, "bad target: %s\n", positional[i].c_str());
      return 2;
    }
    targets.push_back(t);
  }
  if (targets.empty() || (options.events_per_second > 0 && options.fake_port.empty())) {
    std::fprintf(stderr,
                 "usage: %s [--iphones=N] [--camera-viewers=N] [--camera=ENTITY] "
                 "[--events-per-second=R --fake=HOST:PORT] [--seq-entity=ENTITY] "
                 "kiosks seconds name=host:port:api_prefix:ws_path:token...\n",
                 argv[0]);
    return 2;
  }
  const int kiosks = std::atoi(positional[0].c_str());
  const int seconds = std::atoi(positional[1].c_str());
  Run run(targets, options, Clock::now() + std::chrono::seconds(seconds));
  run.run(kiosks);
  return run.print(kiosks, seconds);
}
