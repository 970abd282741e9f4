// Soak: the real agent under mixed LAN load for DINODIA_SOAK_SECONDS (default 600)
// while the platform sync runs every second and the fake platform rotates the hub token every
// few seconds. CTest label `soak` (not part of the default run).
//
// The home's shape for the long run (bench/README.md, "Soak"): the usage trackers follow a
// boiler, a radiator and three lights that the event driver changes, and the knobs below set
// the rest. Each is an environment variable; the defaults are the 10-minute run.
//   DINODIA_SOAK_SECONDS            600    how long the load runs
//   DINODIA_SOAK_WARMUP_SECONDS     10 % of the run, 5..60
//   DINODIA_SOAK_KIOSKS             3      kiosk clients
//   DINODIA_SOAK_KIOSK_CYCLE_MS     500    one kiosk cycle (a real kiosk: 1000)
//   DINODIA_SOAK_ROTATE_SECONDS     5      the platform rotates the hub token this often
//   DINODIA_SOAK_HA_RESTART_AT      0      seconds into the load when Home Assistant restarts
//                                          once (Core down for 5 s; 0: never)
//   DINODIA_SOAK_TABLE              unset  a file for the per-minute table (minute, RSS KiB,
//                                          descriptors, threads)
//
// Load: kiosk HTTP clients on keep-alive connections (GET /api/, GET /api/states, POST
// /api/template, a camera image), short WebSocket sessions (connect, auth, entity registry list,
// close) and two long-lived WebSocket subscriptions receiving state_changed events. Every client
// uses the token the platform publishes at that moment.
//
// Pass criteria after a warm-up (10 % of the run, 5..60 s): RSS growth < 1 MiB and the
// descriptor count back to its baseline (+ a small tolerance); every request answered, no 401,
// no other status, every event delivered. A summary line with the numbers goes to stdout.
#include <dirent.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/ws_client.hpp"

namespace {

using dinodia::testing::AgentProcess;
using dinodia::testing::FakeHaProcess;
using dinodia::testing::FakePlatformProcess;
using dinodia::testing::Process;
using dinodia::testing::TempDir;
using dinodia::testing::WsClient;
using dinodia::testing::WsEvent;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kSerial = "DIN-GB-00500";
constexpr const char* kBootstrap = "bootstrap-secret-soak-0a9b8c";
constexpr const char* kSupervisorToken = "sup-token-soak-7e6d5c";
constexpr const char* kStatusToken = "sync-status-token-soak-3f2e";

constexpr auto kWsSessionPause = 500ms;
constexpr int kSubscribers = 2;
constexpr auto kEventEvery = 250ms;
constexpr auto kSampleEvery = 2s;
// Longer than a client holds a token (one cycle) plus one sync interval, so zero 401s is fair.
constexpr int kGraceSeconds = 10;
constexpr long kMaxRssGrowthKb = 1024;
constexpr long kFdTolerance = 4;
constexpr auto kHaDownFor = 5s;
// Requests that fail from the restart until this long after Core is back are the restart's, not
// the agent's: counted apart, and a reconnecting client is expected.
constexpr auto kRestartWindowAfter = 20s;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

struct SoakSettings {
  int duration_s = std::max(20, env_int("DINODIA_SOAK_SECONDS", 600));
  int warmup_s = env_int("DINODIA_SOAK_WARMUP_SECONDS", std::clamp(duration_s / 10, 5, 60));
  int kiosks = std::max(1, env_int("DINODIA_SOAK_KIOSKS", 3));
  std::chrono::milliseconds kiosk_cycle{std::max(100, env_int("DINODIA_SOAK_KIOSK_CYCLE_MS", 500))};
  int rotate_s = std::max(1, env_int("DINODIA_SOAK_ROTATE_SECONDS", 5));
  int ha_restart_at_s = env_int("DINODIA_SOAK_HA_RESTART_AT", 0);
  std::string table_path =
      std::getenv("DINODIA_SOAK_TABLE") ? std::getenv("DINODIA_SOAK_TABLE") : "";
};

long status_field_kb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  }
  return -1;
}

long fd_count(pid_t pid) {
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!dir) return -1;
  long n = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

struct Sample {
  double t = 0;  // seconds since the load started
  long rss_kb = 0;
  long fds = 0;
  long threads = 0;
};

long median(std::vector<long> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The latest token the platform publishes, refreshed in the background; every one ever seen is
// kept for the no-secret-in-logs check.
class PublishedToken {
 public:
  explicit PublishedToken(const FakePlatformProcess& platform) : platform_(platform) {}
  void refresh() {
    const auto published = platform_.published_token();
    if (!published) return;
    const std::string& token = *published;
    std::lock_guard lock(mutex_);
    if (token != current_) {
      current_ = token;
      seen_.push_back(token);
    }
  }
  std::string current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  std::vector<std::string> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  const FakePlatformProcess& platform_;
  mutable std::mutex mutex_;
  std::string current_;
  std::vector<std::string> seen_;
};

struct Counters {
  std::atomic<long> http_sent{0}, http_ok{0}, http_401{0}, http_other{0}, http_unanswered{0};
  std::atomic<long> http_bad_body{0};
  std::atomic<long> ws_sessions{0}, ws_ok{0}, ws_failed{0};
  std::atomic<long> events_sent{0};
  // Home Assistant's restart: while `restarting`, failures are counted here instead.
  std::atomic<bool> restarting{false};
  std::atomic<bool> events_paused{false};
  std::atomic<long> http_failed_in_restart{0}, ws_failed_in_restart{0};
  std::mutex mutex;
  std::vector<std::string> problems;  // the first few, for the failure message
  void problem(const std::string& what) {
    std::lock_guard lock(mutex);
    if (problems.size() < 20) problems.push_back(what);
  }
};

void kiosk_client(int agent_port, const PublishedToken& tokens, Counters& c,
                  std::chrono::milliseconds cycle, const std::atomic<bool>& stop) {
  httplib::Client client("127.0.0.1", agent_port);
  client.set_keep_alive(true);
  client.set_connection_timeout(5);
  client.set_read_timeout(15);
  client.set_write_timeout(5);
  const std::string tmpl =
      R"({"template":"[{% for s in states %}{{ {'entity_id': s.entity_id} | tojson }}{% endfor %}]"})";
  auto check = [&](const char* step, const httplib::Result& r, std::size_t min_body) {
    ++c.http_sent;
    if (c.restarting && !(r && r->status == 200 && r->body.size() >= min_body)) {
      ++c.http_failed_in_restart;
    } else if (!r) {
      ++c.http_unanswered;
      c.problem(std::string(step) + ": no answer (" + httplib::to_string(r.error()) + ")");
    } else if (r->status == 401) {
      ++c.http_401;
      c.problem(std::string(step) + ": 401");
    } else if (r->status != 200) {
      ++c.http_other;
      c.problem(std::string(step) + ": status " + std::to_string(r->status));
    } else if (r->body.size() < min_body) {
      ++c.http_bad_body;
      c.problem(std::string(step) + ": short body " + std::to_string(r->body.size()));
    } else {
      ++c.http_ok;
    }
  };
  while (!stop) {
    const auto start = Clock::now();
    const httplib::Headers auth{{"Authorization", "Bearer " + tokens.current()}};
    check("GET /api/", client.Get("/api/", auth), 10);
    check("GET /api/states", client.Get("/api/states", auth), 100000);
    check("POST /api/template", client.Post("/api/template", auth, tmpl, "application/json"), 1000);
    check("GET camera", client.Get("/api/camera_proxy/camera.device_5?size=65536", auth), 65536);
    std::this_thread::sleep_until(start + cycle);
  }
}

void ws_sessions(int agent_port, const PublishedToken& tokens, Counters& c,
                 const std::atomic<bool>& stop) {
  while (!stop) {
    ++c.ws_sessions;
    try {
      WsClient ws;
      ws.connect(static_cast<std::uint16_t>(agent_port));
      if (ws.read_json()["type"] != "auth_required") throw std::runtime_error("no auth_required");
      ws.send_json({{"type", "auth"}, {"access_token", tokens.current()}});
      const Json ok = ws.read_json();
      if (ok["type"] != "auth_ok") throw std::runtime_error("auth: " + ok.dump());
      ws.send_json({{"id", 1}, {"type", "config/entity_registry/list"}});
      const Json result = ws.read_result(1, 10s);
      if (result["success"] != true) throw std::runtime_error("list: " + result.dump());
      ws.close();
      ++c.ws_ok;
    } catch (const std::exception& e) {
      if (c.restarting) {
        ++c.ws_failed_in_restart;
      } else {
        ++c.ws_failed;
        c.problem(std::string("ws session: ") + e.what());
      }
    }
    std::this_thread::sleep_for(kWsSessionPause);
  }
}

struct Subscriber {
  std::atomic<long> received{0};
  std::atomic<long> expected_from{-1};  // events_sent when the subscription was confirmed
  // Subscriptions that Home Assistant's restart ended: the events they were owned, and how many.
  std::atomic<long> expected_before{0};
  std::atomic<int> resubscribed{0};
  std::atomic<bool> ended{false};
  std::string end_reason;
  long expected(long events_sent) const {
    return expected_before + (expected_from >= 0 ? events_sent - expected_from : 0);
  }
};

long count_events(const std::string& data) {
  const Json j = Json::parse(data, nullptr, false);
  auto is_event = [](const Json& m) { return m.is_object() && m.value("type", "") == "event"; };
  if (j.is_array()) return std::count_if(j.begin(), j.end(), is_event);
  return is_event(j) ? 1 : 0;
}

// One subscription; returns false if it ended before `stop` (reason in s.end_reason).
bool subscription(int agent_port, const PublishedToken& tokens, Counters& c, Subscriber& s,
                  const std::atomic<bool>& stop) {
  try {
    WsClient ws;
    ws.connect(static_cast<std::uint16_t>(agent_port));
    if (ws.read_json()["type"] != "auth_required") throw std::runtime_error("no auth_required");
    ws.send_json({{"type", "auth"}, {"access_token", tokens.current()}});
    if (ws.read_json()["type"] != "auth_ok") throw std::runtime_error("auth refused");
    ws.send_json({{"id", 1}, {"type", "subscribe_events"}, {"event_type", "state_changed"}});
    if (ws.read_result(1, 10s)["success"] != true) throw std::runtime_error("subscribe refused");
    s.expected_from = c.events_sent.load();
    while (!stop) {
      WsEvent e = ws.read(1s);
      if (e.kind == WsEvent::Kind::timeout) continue;
      if (!e.is_message()) {
        s.end_reason = e.describe();
        return false;
      }
      s.received += count_events(e.data);
    }
    // Drain what is still on its way, then leave properly.
    for (;;) {
      WsEvent e = ws.read(1500ms);
      if (!e.is_message()) break;
      s.received += count_events(e.data);
    }
    ws.close();
    return true;
  } catch (const std::exception& e) {
    s.end_reason = e.what();
    return false;
  }
}

// A long-lived subscriber. Home Assistant's restart ends its subscription (the relay closes the
// client's socket when Core's goes); it then subscribes again, as the apps do. Any other end is a
// failure.
void subscriber(int agent_port, const PublishedToken& tokens, Counters& c, Subscriber& s,
                const std::atomic<bool>& stop) {
  while (!subscription(agent_port, tokens, c, s, stop)) {
    if (!c.restarting) {
      s.ended = true;
      return;
    }
    // The events are paused around the restart, so what this subscription was owned is final.
    if (s.expected_from >= 0) s.expected_before += c.events_sent - s.expected_from;
    s.expected_from = -1;
    ++s.resubscribed;
    while (c.restarting && !stop) std::this_thread::sleep_for(200ms);
    if (stop) return;
  }
}

// The home the trackers follow: a boiler and a radiator (labels Boiler, Radiator) and three
// lights (label Light) among the stand-in's entities.
const std::vector<std::pair<std::string, std::string>> kTracked{
    {"climate.device_3", "lbl_boiler"},
    {"climate.device_9", "lbl_radiator"},
    {"light.device_0", "light"},
    {"light.device_6", "light"},
    {"switch.device_1", "light"}};

Json tracked_state(long n) {
  const auto& [entity, label] = kTracked[static_cast<std::size_t>(n) % kTracked.size()];
  const bool on = (n / static_cast<long>(kTracked.size())) % 2 == 0;
  if (label == "light")
    return {{"entity_id", entity},
            {"state", on ? "on" : "off"},
            {"attributes", {{"friendly_name", entity}}}};
  return {{"entity_id", entity},
          {"state", "heat"},
          {"attributes",
           {{"hvac_mode", "heat"},
            {"hvac_action", on ? "heating" : "idle"},
            {"current_temperature", on ? 19.5 : 21.0},
            {"temperature", 21},
            {"friendly_name", entity}}}};
}

// The stand-in's own entity registry (every entity it has) with the tracked entities labelled,
// and the labels: what a home's Core returns to the trackers.
Json home_registries(const FakeHaProcess& ha) {
  const Json listed = ha.ws_command({{"type", "config/entity_registry/list"}});
  Json entities = listed.value("result", Json::array());
  for (const auto& [entity, label] : kTracked) {
    auto it = std::find_if(entities.begin(), entities.end(), [&id = entity](const Json& e) {
      return e.value("entity_id", "") == id;
    });
    if (it == entities.end()) {
      entities.push_back({{"entity_id", entity}, {"id", "reg-" + entity}, {"platform", "demo"}});
      it = std::prev(entities.end());
    }
    (*it)["labels"] = {label};
  }
  Json states = Json::array();
  for (long i = 0; i < static_cast<long>(kTracked.size()); ++i) states.push_back(tracked_state(i));
  return {{"label_registry",
           {{{"label_id", "light"}, {"name", "Light"}},
            {{"label_id", "lbl_boiler"}, {"name", "Boiler"}},
            {{"label_id", "lbl_radiator"}, {"name", "Radiator"}}}},
          {"entity_registry", entities},
          {"states", states}};
}

// Home Assistant firing state_changed events: a sensor and the tracked entities, in turn.
void event_driver(int ha_port, Counters& c, const std::atomic<bool>& stop) {
  httplib::Client client("127.0.0.1", ha_port);
  client.set_keep_alive(true);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  long n = 0;
  while (!stop) {
    if (c.events_paused) {
      std::this_thread::sleep_for(kEventEvery);
      continue;
    }
    ++n;
    // A sensor, then each tracked entity in turn (the usage trackers' events).
    const Json state =
        n % 2 ? Json{{"entity_id", "sensor.device_2"},
                     {"state", std::to_string(18 + (n % 80) / 10.0)},
                     {"attributes", {{"unit_of_measurement", "°C"}, {"friendly_name", "Soak"}}}}
              : tracked_state(n / 2);
    Json with_times = state;
    with_times["last_changed"] = "2026-11-24T10:00:00.000000+00:00";
    with_times["last_updated"] = "2026-11-24T10:00:00.000000+00:00";
    with_times["context"] = {{"id", "soak" + std::to_string(n)}};
    const Json event{{"event_type", "state_changed"},
                     {"data", {{"entity_id", state["entity_id"]}, {"new_state", with_times}}},
                     {"origin", "LOCAL"},
                     {"time_fired", "2026-11-24T10:00:00.000000+00:00"}};
    auto r = client.Post("/_fake/event", event.dump(), "application/json");
    if (r && r->status == 200) ++c.events_sent;
    std::this_thread::sleep_for(kEventEvery);
  }
}

}  // namespace

TEST_CASE(
    "soak: mixed HTTP and WebSocket load with rotation - RSS and descriptors flat - every "
    "request answered",
    "[soak]") {
  const SoakSettings settings;
  const int duration_s = settings.duration_s;
  const int warmup_s = settings.warmup_s;
  TempDir dir;

  FakePlatformProcess platform(dir, kSerial, kBootstrap,
                               {"vercel",
                                false,
                                {"--rotate-seconds", std::to_string(settings.rotate_s),
                                 "--grace-seconds", std::to_string(kGraceSeconds)}});
  FakeHaProcess ha(dir, kSupervisorToken);
  const int ha_port = ha.port();
  const Json registries = home_registries(ha);
  REQUIRE(registries["entity_registry"].size() > kTracked.size());
  (void)ha.post("/_fake/set", registries);

  // Usage tracking stays on: its long-lived Home Assistant connection and polling are part of
  // what must not leak.
  Json options =
      dinodia::testing::sync_agent_options(kSerial, kBootstrap, kStatusToken, platform.url());
  options.erase("heating_usage_tracking_enabled");
  options.erase("electric_usage_tracking_enabled");
  AgentProcess agent_process(
      {dir.path(), "", ha.url(), kSupervisorToken, dinodia::testing::fast_sync_env(), 40s});
  const int agent_port = agent_process.start(options);
  Process& agent = agent_process.process();
  REQUIRE(agent.wait_for_log("Platform sync updated tokens", 20s));

  PublishedToken tokens(platform);
  const auto token_deadline = Clock::now() + 20s;
  while (tokens.current().empty() && Clock::now() < token_deadline) {
    tokens.refresh();
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE_FALSE(tokens.current().empty());
  auto platform_hub = [&] { return platform.state(); };
  const std::int64_t published_start = platform_hub()["hub"]["publishedVersion"];

  Counters counters;
  std::atomic<bool> stop_load{false}, stop_background{false};
  std::vector<std::thread> threads;
  std::thread token_thread([&] {
    while (!stop_background) {
      tokens.refresh();
      std::this_thread::sleep_for(250ms);
    }
  });
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_unique<Subscriber>());
    threads.emplace_back(subscriber, agent_port, std::cref(tokens), std::ref(counters),
                         std::ref(*subscribers.back()), std::cref(stop_load));
  }
  // Events only once both subscriptions are confirmed, so "every event delivered" is exact.
  auto all_subscribed = [&] {
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      bool all = true;
      for (auto& s : subscribers) all &= s->expected_from >= 0 || s->ended;
      if (all) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  REQUIRE(all_subscribed());
  threads.emplace_back(event_driver, ha_port, std::ref(counters), std::cref(stop_load));
  for (int i = 0; i < settings.kiosks; ++i) {
    threads.emplace_back(kiosk_client, agent_port, std::cref(tokens), std::ref(counters),
                         settings.kiosk_cycle, std::cref(stop_load));
  }
  // Home Assistant restarts once: events pause (so every subscriber's count stays exact), Core
  // goes down for kHaDownFor and comes back; failures until kRestartWindowAfter are the restart's.
  int ha_restarts = 0;
  std::thread restart_thread([&] {
    if (settings.ha_restart_at_s <= 0) return;
    const auto at = Clock::now() + std::chrono::seconds(settings.ha_restart_at_s);
    while (Clock::now() < at && !stop_load) std::this_thread::sleep_for(200ms);
    if (stop_load) return;
    counters.events_paused = true;
    std::this_thread::sleep_for(2s);  // the last events reach the subscribers
    counters.restarting = true;
    ha.control("/_fake/core?running=0");
    std::this_thread::sleep_for(kHaDownFor);
    ha.control("/_fake/core?running=1");
    ++ha_restarts;
    std::this_thread::sleep_for(kRestartWindowAfter);
    counters.restarting = false;
    // Every subscriber is back before events resume.
    const auto deadline = Clock::now() + 20s;
    for (auto& s : subscribers) {
      while (s->expected_from < 0 && !s->ended && Clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
      }
    }
    counters.events_paused = false;
  });
  threads.emplace_back(ws_sessions, agent_port, std::cref(tokens), std::ref(counters),
                       std::cref(stop_load));

  // Sampling while the load runs.
  std::vector<Sample> samples;
  const auto load_start = Clock::now();
  const auto load_end = load_start + std::chrono::seconds(duration_s);
  while (Clock::now() < load_end && agent.running()) {
    Sample s;
    s.t = std::chrono::duration<double>(Clock::now() - load_start).count();
    s.rss_kb = status_field_kb(agent.pid(), "VmRSS");
    s.fds = fd_count(agent.pid());
    s.threads = status_field_kb(agent.pid(), "Threads");
    samples.push_back(s);
    std::this_thread::sleep_until(std::min(load_end, Clock::now() + kSampleEvery));
  }
  const bool alive = agent.running();
  stop_load = true;
  restart_thread.join();
  for (auto& t : threads) t.join();
  // Load gone: pooled and client connections wind down.
  std::this_thread::sleep_for(3s);
  const long fds_after = fd_count(agent.pid());
  stop_background = true;
  token_thread.join();
  const std::int64_t published_end = platform_hub()["hub"]["publishedVersion"];
  const Json platform_state = platform_hub();

  if (!settings.table_path.empty()) {
    // One row per minute (the first sample at or after each minute), ready to plot.
    std::ofstream table(settings.table_path);
    table << "minute,rss_kib,fds,threads\n";
    double next = 0;
    for (const auto& s : samples) {
      if (s.t + 1e-6 < next) continue;
      table << static_cast<int>(next / 60) << "," << s.rss_kb << "," << s.fds << "," << s.threads
            << "\n";
      next += 60;
    }
  }
  // Baseline: the samples of the first window after the warm-up; end: the last window. Medians,
  // so one sample taken while a 200 KB body was in flight does not decide the result.
  const double window_s = std::min(30.0, duration_s / 5.0);
  std::vector<long> base_rss, base_fds, end_rss, end_fds;
  long max_fds = 0, max_rss = 0, first_rss = samples.empty() ? -1 : samples.front().rss_kb;
  long threads_base = -1, threads_end = -1;
  const double end_from = duration_s - window_s;
  for (const auto& s : samples) {
    if (s.t >= warmup_s && s.t < warmup_s + window_s) {
      base_rss.push_back(s.rss_kb);
      base_fds.push_back(s.fds);
      if (threads_base < 0) threads_base = s.threads;
    }
    if (s.t >= end_from) {
      end_rss.push_back(s.rss_kb);
      end_fds.push_back(s.fds);
      threads_end = s.threads;
    }
    if (s.t >= warmup_s) {
      max_fds = std::max(max_fds, s.fds);
      max_rss = std::max(max_rss, s.rss_kb);
    }
  }
  const long rss_base = median(base_rss), rss_end = median(end_rss);
  const long fds_base = median(base_fds), fds_end = median(end_fds);
  // Least-squares slope of RSS after the warm-up, as KiB per 10 minutes (reported, not judged:
  // the end-minus-baseline figure is the target).
  double slope = 0;
  {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& s : samples) {
      if (s.t < warmup_s) continue;
      n += 1;
      sx += s.t;
      sy += static_cast<double>(s.rss_kb);
      sxx += s.t * s.t;
      sxy += s.t * static_cast<double>(s.rss_kb);
    }
    if (n > 2 && n * sxx - sx * sx != 0) slope = (n * sxy - sx * sy) / (n * sxx - sx * sx) * 600;
  }
  std::ostringstream subs;
  for (auto& s : subscribers) {
    subs << " " << s->received << "/" << s->expected(counters.events_sent);
  }

  std::ostringstream summary;
  summary << "SOAK duration_s=" << duration_s << " warmup_s=" << warmup_s
          << " samples=" << samples.size() << " rss_kb first=" << first_rss
          << " baseline=" << rss_base << " end=" << rss_end << " growth=" << (rss_end - rss_base)
          << " max=" << max_rss << " slope_kb_per_10min=" << static_cast<long>(slope)
          << " fds baseline=" << fds_base << " end=" << fds_end << " max=" << max_fds
          << " after_load=" << fds_after << " threads " << threads_base << "->" << threads_end
          << " http sent=" << counters.http_sent << " ok=" << counters.http_ok
          << " 401=" << counters.http_401 << " other=" << counters.http_other
          << " unanswered=" << counters.http_unanswered << " bad_body=" << counters.http_bad_body
          << " ws_sessions=" << counters.ws_sessions << " ok=" << counters.ws_ok
          << " failed=" << counters.ws_failed << " events_sent=" << counters.events_sent
          << " received_per_subscriber=" << subs.str() << " ha_restarts=" << ha_restarts
          << " failed_in_restart http=" << counters.http_failed_in_restart
          << " ws=" << counters.ws_failed_in_restart << " kiosks=" << settings.kiosks
          << " rotate_s=" << settings.rotate_s << " max_after_warmup=" << max_rss
          << " rotations=" << published_start << "->" << published_end
          << " sync_updates=" << agent.count_log("Platform sync updated tokens")
          << " sync_failures=" << agent.count_log("Platform sync failed")
          << " warn_lines=" << agent.count_log(" WARN ")
          << " error_lines=" << agent.count_log(" ERROR ");
  std::cout << summary.str() << std::endl;
  {
    // The warnings themselves, each distinct text once, so a reader sees what they were.
    std::istringstream lines(agent.log());
    std::set<std::string> shown;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(" WARN ") == std::string::npos && line.find(" ERROR ") == std::string::npos) {
        continue;
      }
      const std::string key = line.substr(0, line.find(" {"));
      if (shown.size() < 10 && shown.insert(key).second) std::cout << "  " << line << "\n";
    }
    std::cout << std::flush;
  }
  INFO(summary.str());
  {
    std::lock_guard lock(counters.mutex);
    for (const auto& p : counters.problems) UNSCOPED_INFO("problem: " << p);
  }

  REQUIRE(alive);
  CHECK(counters.http_sent > 0);
  CHECK(counters.http_ok + counters.http_failed_in_restart == counters.http_sent);
  CHECK(counters.http_unanswered == 0);
  CHECK(counters.http_401 == 0);
  CHECK(counters.http_other == 0);
  CHECK(counters.http_bad_body == 0);
  CHECK(counters.ws_sessions > 0);
  CHECK(counters.ws_failed == 0);
  for (auto& s : subscribers) {
    INFO("subscriber ended: " << s->end_reason);
    CHECK_FALSE(s->ended);
    CHECK(s->received >= s->expected(counters.events_sent));
    CHECK(s->resubscribed <= ha_restarts);
  }
  if (settings.ha_restart_at_s > 0 && settings.ha_restart_at_s < duration_s) {
    CHECK(ha_restarts == 1);
  }
  CHECK(counters.events_sent > 0);
  // Rotations really happened throughout (one per kRotateSeconds plus a sync, at best).
  CHECK(published_end - published_start >= std::max(2, duration_s / (settings.rotate_s * 3)));
  REQUIRE(rss_base > 0);
  REQUIRE(rss_end > 0);
  CHECK(rss_end - rss_base < kMaxRssGrowthKb);
  CHECK(fds_end <= fds_base + kFdTolerance);
  CHECK(fds_after <= fds_base + kFdTolerance);
  CHECK(agent.count_log(" ERROR ") == 0);
  CHECK(platform_state["duplicateNonceAttempts"] == 0);
  CHECK(platform_state["replaysRejected"] == 0);

  agent.signal(SIGTERM);
  CHECK(agent.wait(20s) == std::optional<int>(0));
  std::vector<std::string> secrets{kBootstrap, kSupervisorToken, kStatusToken};
  if (platform_state["hub"]["syncSecret"].is_string()) {
    secrets.push_back(platform_state["hub"]["syncSecret"]);
  }
  for (const auto& t : tokens.seen()) secrets.push_back(t);
  agent_process.check_logs_have_no_secrets(secrets);
}
