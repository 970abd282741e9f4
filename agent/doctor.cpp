#include "agent/doctor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "agent/ha_sync_fetches.hpp"
#include "agent/platform_origin.hpp"
#include "agent/state_store.hpp"
#include "agent/telemetry_service.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/detached_thread.hpp"
#include "common/text.hpp"
#include "platform_client/hub_signer.hpp"
#include "platform_client/platform_api.hpp"
#include "platform_client/transport.hpp"
#include "platform_client/url.hpp"
#include "telemetry/lan_address.hpp"

namespace dinodia::agent {
namespace pc = platform_client;
namespace {

// Each check's own bound. The longest chain is a platform health check followed by the pairing
// attempt (command line only): 2 × 6 s, inside kDoctorTotalTimeout.
constexpr std::chrono::seconds kPlatformConnect{4};
constexpr std::chrono::seconds kPlatformTotal{6};
constexpr std::chrono::milliseconds kSupervisorTimeout{3000};
constexpr std::chrono::milliseconds kCoreTimeout{4000};
constexpr std::chrono::seconds kPortProbeConnect{1};
constexpr std::chrono::seconds kPortProbeTotal{2};
// The platform accepts |ts − now| ≤ 300 s; the agent corrects its signatures beyond 240 s
// (docs/platform-protocol.md#skew). Below 30 s a clock is as good as NTP keeps it.
constexpr std::int64_t kClockWarnSeconds = 30;
constexpr std::int64_t kClockFailSeconds = 240;

// The order of the report, whatever order the checks finish in.
const std::vector<std::string>& check_order() {
  static const std::vector<std::string> order{"options",
                                              "platform_primary",
                                              "platform_canary",
                                              "clock",
                                              "pairing",
                                              "credentials_primary",
                                              "credentials_canary",
                                              "supervisor",
                                              "home_assistant",
                                              "lan_address",
                                              "port"};
  return order;
}

DoctorCheck make(std::string id, std::string title, Verdict verdict, std::string detail,
                 std::string action = {}) {
  return {std::move(id), std::move(title), verdict, std::move(detail), std::move(action)};
}

std::string ago(std::int64_t ms) {
  const std::int64_t s = std::max<std::int64_t>(0, ms / 1000);
  if (s < 90) return std::to_string(s) + " s ago";
  if (s < std::int64_t{90} * 60) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

// The checks that run in parallel hand their results here. A check that has not reported when
// the total time is up is replaced by its placeholder (a fail saying so).
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::map<std::string, DoctorCheck> checks;
  std::map<std::string, std::int64_t> clock_offsets;  // role -> platform minus hub, seconds
  std::map<std::string, DoctorCheck> placeholders;
  int running = 0;

  void put(DoctorCheck check) {
    const std::string id = check.id;
    std::lock_guard lock(mutex);
    checks[id] = std::move(check);
  }
  void task_done() {
    std::lock_guard lock(mutex);
    --running;
    cv.notify_all();
  }
};

// Runs `work` on a thread of its own; the collector waits for it (or the total time).
void spawn(const std::shared_ptr<Collector>& collector, std::vector<DoctorCheck> placeholders,
           std::function<void(const std::shared_ptr<Collector>&)> work) {
  {
    std::lock_guard lock(collector->mutex);
    ++collector->running;
    for (auto& p : placeholders) {
      p.verdict = Verdict::fail;
      p.detail = "no result within " + std::to_string(kDoctorTotalTimeout.count()) + " s";
      p.action = "Run the doctor again; if it stays, send the log to Dinodia support.";
      collector->placeholders[p.id] = std::move(p);
    }
  }
  auto task = [collector, work = std::move(work)](bool own_thread) {
    try {
      work(collector);
    } catch (const std::exception&) {
      // A check that throws (out of memory) leaves its placeholder in the report.
    }
    // The doctor may return (and the process exit) as soon as the last check is done: what
    // OpenSSL keeps for this thread (the nonce's random generator) is freed first, not at the
    // thread's end, which may come after the exit.
    if (own_thread) crypto::release_thread_state();
    collector->task_done();
  };
  if (!threads::start_detached([task] { task(true); })) task(false);  // no thread: run it here
}

// ------------------------------------------------------------------ platform

std::string transport_problem(const pc::HttpResult& h) {
  if (h.error == "dns") return "unreachable: the name does not resolve (DNS)";
  if (h.error == "connect") return "unreachable: the connection was refused or has no route";
  if (h.error == "timeout") {
    return "unreachable: no answer within " + std::to_string(kPlatformTotal.count()) + " s";
  }
  if (h.error == "tls") {
    return "TLS error: the platform's certificate could not be verified (not trusted, expired "
           "or for another name) or the TLS handshake failed";
  }
  if (h.error == "url") return "not an http(s) URL";
  return "unreachable: the request failed (" + h.error + ")";
}

std::string transport_action(const pc::HttpResult& h, const std::string& role) {
  const std::string option = role == "canary" ? "platform_canary_base_url" : "platform_base_url";
  if (h.error == "tls") {
    return "Check the hub's date and time, and that no proxy or firewall on the home network "
           "intercepts HTTPS. If " +
           option + " was changed, " +
           (role == "canary" ? "correct it." : "unset it (the default is right).");
  }
  if (h.error == "url") return "Correct " + option + (role == "canary" ? "." : " or unset it.");
  return "Check the hub's internet connection and DNS (Settings → System → Network) and any "
         "firewall between the hub and the internet.";
}

// Health + clock offset (+ the pairing attempt) against one origin, on its own thread.
void check_origin(Collector& out, const std::string& role, const std::string& base,
                  const std::string& serial, const std::string& bootstrap, bool probe_pairing) {
  const std::string origin = origin_of(base);
  pc::TransportOptions options;
  options.connect_timeout = kPlatformConnect;
  options.total_timeout = kPlatformTotal;
  auto transport = pc::make_http_transport(options);
  pc::HttpResult health;
  if (pc::parse_url(base)) {
    health = transport->get(origin + "/api/health");
  } else {
    health.error = "url";
  }
  const std::int64_t hub_now = clock::unix_seconds();
  std::optional<std::int64_t> offset;
  if (health.date_unix) offset = *health.date_unix - hub_now;
  out.put(platform_check(role, origin, health));
  if (offset) {
    std::lock_guard lock(out.mutex);
    out.clock_offsets[role] = *offset;
  }
  if (!probe_pairing || health.status == 0) return;

  const std::string id = "credentials_" + role;
  const std::string title = "Pairing credentials (" + role + ") " + origin;
  pc::PlatformApi api(*transport);
  pc::PairResult pr = api.pair(pc::pair_url(base), pc::HubSigner::sign_now(serial, bootstrap));
  crypto::wipe(pr.sync_secret);
  const bool clock_off = offset && std::llabs(*offset) > kClockFailSeconds;
  switch (pr.failure) {
    case pc::Failure::none:
      out.put(make(id, title, Verdict::ok,
                   "pairing with " + origin +
                       " works: it accepts hub_agent_id and "
                       "hub_agent_secret"));
      break;
    case pc::Failure::unknown_serial:
      out.put(make(id, title, Verdict::fail,
                   "wrong serial: " + origin + " does not know hub_agent_id '" + serial + "'",
                   "Enter the serial exactly as it was entered in the portal (Installer → "
                   "Provision hub). If the hub was removed there, provision it again and enter "
                   "the new bootstrap secret."));
      break;
    case pc::Failure::bad_signature:
      if (clock_off) {
        out.put(make(id, title, Verdict::fail,
                     "pairing rejected by " + origin + ": fix the hub clock first",
                     "Fix the host's time (see the clock line), then run the doctor again."));
      } else {
        out.put(make(
            id, title, Verdict::fail,
            "wrong bootstrap secret: " + origin + " rejects hub_agent_secret (the clock is fine)",
            "Enter the bootstrap secret exactly as the portal showed it. If it is lost, "
            "provision the hub again in the portal."));
      }
      break;
    default:
      out.put(make(id, title, Verdict::fail,
                   "pairing with " + origin + " failed (" + std::string(pc::to_string(pr.failure)) +
                       (pr.message.empty() ? "" : ": " + pr.message) + ")",
                   "See the platform line for " + origin + "."));
  }
}

// ------------------------------------------------------------------ pairing state

std::string describe(const SyncAttempt& a) {
  std::string s = a.operation + " " + a.status;
  if (a.http_status != 0) s += " (HTTP " + std::to_string(a.http_status) + ")";
  s += " at " + clock::iso8601_from_millis(a.at_ms);
  if (!a.error.empty()) s += ": " + a.error;
  return s;
}

DoctorCheck pairing_check(const Options& o, const StateStore* store) {
  const std::string id = "pairing";
  const std::string title = "Pairing";
  const std::string serial(text::trim(o.hub_agent_id));
  const bool have_bootstrap = !text::trim(o.hub_agent_secret).empty();
  if (!o.platform_sync_enabled) {
    return make(id, title, Verdict::warn,
                "platform_sync_enabled is off: the hub does not pair with the platform, and the "
                "apps get no hub token from it",
                "Turn on platform_sync_enabled (see Pairing), unless this hub is meant to run "
                "without the Dinodia platform.");
  }
  if (serial.empty()) {
    return make(id, title, Verdict::fail, "hub_agent_id (the hub serial) is empty",
                "Enter the hub serial from the portal (Installer → Provision hub) in "
                "hub_agent_id.");
  }
  if (store == nullptr) {
    return make(id, title, Verdict::fail,
                "not paired: there is no state database yet (the agent has not run on this hub)",
                "Start the add-on: it pairs on its first sync. Then check again.");
  }
  try {
    const auto pairing = store->pairing();
    const auto recent = store->recent_attempts(1);
    const std::string last =
        recent.empty() ? std::string() : "; last attempt: " + describe(recent.front());
    if (!pairing) {
      if (!have_bootstrap) {
        return make(id, title, Verdict::fail,
                    "not paired, and hub_agent_secret (the bootstrap secret) is empty",
                    "Enter the bootstrap secret from the portal in hub_agent_secret.");
      }
      const std::string status = recent.empty() ? std::string() : recent.front().status;
      std::string action;
      if (status.empty()) {
        action =
            "Wait for the first sync (a few seconds after the start). If it does not come, "
            "restart the add-on.";
      } else if (status == "unknown_serial") {
        action = "The platform does not know hub_agent_id '" + serial +
                 "': enter the serial exactly as it was entered in the portal (Installer → "
                 "Provision hub); if the hub was removed there, provision it again.";
      } else if (status == "bad_signature") {
        action =
            "The platform rejects the signature: enter hub_agent_secret exactly as the "
            "portal showed it, and check the clock line.";
      } else {
        action =
            "The platform could not be reached or failed (see the platform lines); the "
            "agent retries by itself.";
      }
      return make(id, title, Verdict::fail, "not paired: no sync secret is stored" + last,
                  std::move(action));
    }
    const TokenState tokens = store->token_state();
    std::string detail = "paired as " + pairing->serial +
                         (pairing->paired_at.empty() ? "" : " since " + pairing->paired_at) +
                         "; sync secret stored; " + std::to_string(tokens.hashes.size()) +
                         " accepted hub token(s)";
    if (pairing->serial != serial) {
      return make(id, title, Verdict::warn,
                  detail + "; but hub_agent_id is now '" + serial +
                      "': the agent pairs again on its next sync",
                  "Nothing to do if the serial was changed on purpose; otherwise set "
                  "hub_agent_id back to '" +
                      pairing->serial + "'.");
    }
    std::int64_t last_success = 0;
    for (const auto& c : store->origin_counters()) {
      last_success = std::max(last_success, c.last_success_ms);
    }
    if (last_success == 0) {
      return make(id, title, Verdict::warn, detail + "; no successful sync recorded yet" + last,
                  "Wait for the next sync. If this stays, see the platform lines.");
    }
    const std::int64_t age = clock::unix_millis() - last_success;
    detail += "; last successful sync " + clock::iso8601_from_millis(last_success) + " (" +
              ago(age) + ")";
    // Three missed cycles (and at least 10 minutes) before it is worth a warning.
    const std::int64_t limit_ms = std::max<std::int64_t>(
        std::int64_t{10} * 60000,
        (3 * std::int64_t{std::max(2, o.platform_sync_interval_minutes)} + 1) * 60000);
    if (age > limit_ms) {
      return make(id, title, Verdict::warn, detail + last,
                  "The hub keeps serving the apps with the tokens it has, but new tokens and "
                  "usage data wait for a sync: see the platform lines.");
    }
    return make(id, title, Verdict::ok, detail);
  } catch (const std::exception& e) {
    return make(id, title, Verdict::fail,
                std::string("cannot read the state database: ") + e.what(),
                "Restart the add-on. If it stays, send the log to Dinodia support.");
  }
}

// ------------------------------------------------------------------ Supervisor, Core, LAN

struct Waiter {
  std::mutex mutex;
  std::condition_variable cv;
  int left = 0;
};

DoctorCheck supervisor_check(const std::string& url, const std::string& error,
                             const ha_client::HttpReply& reply) {
  const std::string id = "supervisor";
  const std::string title = "Supervisor " + url;
  if (!error.empty()) {
    return make(id, title, Verdict::fail, "unreachable (" + error + ")",
                "Restart the add-on. If Home Assistant is restarting or updating, wait for it "
                "to finish.");
  }
  if (reply.status == 401 || reply.status == 403) {
    return make(id, title, Verdict::fail,
                "rejects the add-on's SUPERVISOR_TOKEN (HTTP " + std::to_string(reply.status) + ")",
                "Restart the add-on. If it stays, reinstall it (the Supervisor gives each add-on "
                "its own token).");
  }
  if (reply.status >= 200 && reply.status < 300) {
    return make(id, title, Verdict::ok,
                "answers (GET /network/info: HTTP " + std::to_string(reply.status) + ")");
  }
  return make(id, title, Verdict::fail,
              "answered HTTP " + std::to_string(reply.status) + " for /network/info",
              "Restart the add-on. If it stays, check Settings → System → Logs (Supervisor).");
}

DoctorCheck core_check(const std::string& error, const ha_client::HttpReply& reply) {
  const std::string id = "home_assistant";
  const std::string title = "Home Assistant Core";
  if (!error.empty()) {
    return make(id, title, Verdict::fail, "unreachable through the Supervisor (" + error + ")",
                "See the Supervisor line. If Home Assistant is restarting, wait for it.");
  }
  if (reply.status >= 200 && reply.status < 300) {
    return make(id, title, Verdict::ok,
                "answers through the Supervisor (GET /core/api/: HTTP " +
                    std::to_string(reply.status) + "): the apps' requests can be relayed");
  }
  if (reply.status == 401 || reply.status == 403) {
    return make(id, title, Verdict::fail,
                "rejects the add-on's token (HTTP " + std::to_string(reply.status) + ")",
                "Restart the add-on. If it stays, reinstall it.");
  }
  if (reply.status >= 500) {
    return make(id, title, Verdict::fail,
                "does not answer (HTTP " + std::to_string(reply.status) +
                    " from the Supervisor): it is starting, stopped or has crashed; the apps get "
                    "errors meanwhile",
                "Wait until Home Assistant has started. If it does not, check Settings → "
                "System → Logs, or restart Home Assistant.");
  }
  return make(id, title, Verdict::fail, "answered HTTP " + std::to_string(reply.status),
              "Restart Home Assistant. If it stays, send the log to Dinodia support.");
}

DoctorCheck lan_check(const HaSyncFetches::LanLookup& lan, bool sync_enabled) {
  const std::string id = "lan_address";
  const std::string title = "LAN address";
  if (!lan.error.empty()) {
    return make(id, title, Verdict::fail,
                "cannot read the network settings from the Supervisor (" + lan.error +
                    "): no LAN address can be published",
                "See the Supervisor line.");
  }
  if (!lan.url) {
    return make(id, title, Verdict::fail,
                "no private IPv4 address (10.x, 172.16–31.x, 192.168.x) on the host's network "
                "interfaces: the platform cannot tell the apps where the hub is",
                "Connect the hub to the home network (Settings → System → Network) and give it "
                "a DHCP reservation on the router.");
  }
  // "http://<ip>:8123": the platform hands the apps the same address with port 8099
  // (docs/platform-protocol.md#telemetry-fields).
  std::string host = lan.url->substr(7);
  host = host.substr(0, host.find(':'));
  std::string detail =
      "apps in Home mode will call http://" + host + ":8099 (lanBaseUrl " + *lan.url + ")";
  if (!sync_enabled) detail += "; not uploaded while platform_sync_enabled is off";
  const auto ip = telemetry::parse_ipv4(host);
  if (ip && (*ip)[0] == 172 && (*ip)[1] >= 17 && (*ip)[1] <= 19) {
    return make(id, title, Verdict::warn,
                detail + "; this looks like a Docker network address, not the home network",
                "Check that the hub is connected to the home network (Settings → System → "
                "Network); the apps cannot reach a Docker address.");
  }
  return make(id, title, Verdict::ok, detail);
}

// Supervisor, Core and the LAN address: the first two as callbacks on `io`, the LAN lookup
// through a HaSyncFetches of the doctor's own on this thread (it waits up to 4 s).
// The callbacks hold the collector: they may come after the report was handed out.
void check_home_assistant(const std::shared_ptr<Collector>& out, boost::asio::io_context& io,
                          const ha_client::HaClientConfig& ha, const std::string& supervisor_url,
                          bool sync_enabled) {
  auto waiter = std::make_shared<Waiter>();
  waiter->left = 2;
  auto done = [waiter] {
    std::lock_guard lock(waiter->mutex);
    --waiter->left;
    waiter->cv.notify_all();
  };
  const std::shared_ptr<Collector>& collector = out;
  ha_client::supervisor_request(
      io, ha, "GET", ha.upstream.path_prefix + "/network/info", "", kSupervisorTimeout,
      [collector, supervisor_url, done](const std::string& e, const ha_client::HttpReply& r) {
        collector->put(supervisor_check(supervisor_url, e, r));
        done();
      });
  ha_client::supervisor_request(
      io, ha, "GET", ha.upstream.core_path("/api/"), "", kCoreTimeout,
      [collector, done](const std::string& e, const ha_client::HttpReply& r) {
        collector->put(core_check(e, r));
        done();
      });
  HaSyncFetches fetches(io, ha);
  fetches.set_running(true);
  out->put(lan_check(fetches.lan_address(), sync_enabled));
  std::unique_lock lock(waiter->mutex);
  // Both calls end by their own timeouts; this bound only guards against a loop that stopped.
  waiter->cv.wait_for(lock, kCoreTimeout + std::chrono::seconds(1),
                      [&] { return waiter->left == 0; });
}

// ------------------------------------------------------------------ port

// True when `port` on `address` can be bound now (as the bridge binds it: SO_REUSEADDR).
// `error` is set to errno otherwise.
bool can_bind(const std::string& address, int port, int& error) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    error = EINVAL;
    return false;
  }
  const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno;
    return false;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0;
  error = bound ? 0 : errno;
  ::close(fd);
  return bound;
}

DoctorCheck port_check(int port, const std::optional<std::string>& bind_address, bool held_here) {
  const std::string id = "port";
  const std::string title = "Port " + std::to_string(port);
  if (held_here) {
    return make(id, title, Verdict::ok, "held by this agent: it listens for the apps");
  }
  if (port == 0) return make(id, title, Verdict::ok, "0: any free port is taken (tests only)");
  const std::string address = bind_address.value_or("0.0.0.0");
  int error = 0;
  if (can_bind(address, port, error)) {
    return make(id, title, Verdict::ok, "free: the agent can open it");
  }
  if (error != EADDRINUSE) {
    return make(id, title, Verdict::fail,
                "cannot be opened on " + address + " (" + std::strerror(error) + ")",
                "Keep port at 8099. If it stays, send the log to Dinodia support.");
  }
  // In use: by the agent itself (the command line run next to it), or by something else.
  const std::string host = address == "0.0.0.0" || address == "::" ? "127.0.0.1" : address;
  pc::TransportOptions options;
  options.connect_timeout = kPortProbeConnect;
  options.total_timeout = kPortProbeTotal;
  const pc::HttpResult health = pc::make_http_transport(options)->get(
      "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
      std::to_string(port) + "/_dinodia/health");
  if (health.status == 200 && health.body.find("\"ok\":true") != std::string::npos) {
    return make(id, title, Verdict::ok, "held by the running agent (it answers /_dinodia/health)");
  }
  return make(id, title, Verdict::fail,
              "in use by another program: the agent cannot open it, and the apps always call "
              "port 8099",
              "Find the add-on or program on the host that uses port " + std::to_string(port) +
                  " and stop it or move it to another port. Keep this add-on's port at 8099.");
}

// Owns a loop for the Home Assistant calls when the caller has none (the command line).
class OwnLoop {
 public:
  OwnLoop() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~OwnLoop() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  OwnLoop(const OwnLoop&) = delete;
  OwnLoop& operator=(const OwnLoop&) = delete;
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::ok:
      return "ok";
    case Verdict::warn:
      return "warn";
    case Verdict::fail:
      return "fail";
  }
  return "fail";
}

std::size_t DoctorReport::count(Verdict verdict) const {
  return static_cast<std::size_t>(
      std::count_if(checks.begin(), checks.end(),
                    [verdict](const DoctorCheck& c) { return c.verdict == verdict; }));
}

Verdict DoctorReport::overall() const {
  if (count(Verdict::fail) > 0) return Verdict::fail;
  return count(Verdict::warn) > 0 ? Verdict::warn : Verdict::ok;
}

DoctorCheck platform_check(const std::string& role, const std::string& origin,
                           const pc::HttpResult& health) {
  const std::string id = "platform_" + role;
  const std::string title = "Platform (" + role + ") " + origin;
  const bool canary = role == "canary";
  // The hub keeps working through the primary when only the canary is unhealthy
  // (docs/platform-protocol.md#origins).
  const Verdict unhealthy = canary ? Verdict::warn : Verdict::fail;
  const std::string backend = health.backend.empty() ? "" : ", backend " + health.backend;
  const std::string answer = "GET /api/health: HTTP " + std::to_string(health.status) + backend +
                             ", " + std::to_string(health.latency.count()) + " ms";
  if (health.status == 0) {
    std::string action = transport_action(health, role);
    if (canary) action += " The sync falls back to the primary origin meanwhile.";
    return make(id, title, unhealthy, transport_problem(health), std::move(action));
  }
  if (health.status >= 200 && health.status < 300) {
    return make(id, title, Verdict::ok, "reachable and healthy (" + answer + ")");
  }
  if (health.status == 404 && health.backend == "vercel") {
    // Only the AWS origin has /api/health; behind the Worker a Vercel answer proves the platform
    // answers, and the pairing line shows whether syncs succeed.
    return make(id, title, Verdict::ok,
                "reachable (" + answer +
                    ": the Vercel origin has no health route; see the pairing line for the "
                    "syncs)");
  }
  const std::string fallback =
      canary ? " The sync falls back to the primary origin meanwhile." : "";
  if (health.status == 404) {
    return make(id, title, unhealthy,
                "not healthy (" + answer + "): this address does not serve the Dinodia platform",
                canary ? "Correct platform_canary_base_url (or clear it)." + fallback
                       : std::string("Unset platform_base_url: the default "
                                     "(https://app.dinodiasmartliving.com) is right."));
  }
  if (health.status >= 500) {
    return make(id, title, unhealthy,
                "reachable but not healthy (" + answer + "): the platform has a problem",
                "Nothing to change on the hub: it keeps serving the apps with the tokens it has "
                "and retries by itself. If this lasts more than an hour, contact Dinodia "
                "support." +
                    fallback);
  }
  return make(id, title, unhealthy, "unexpected answer (" + answer + ")",
              std::string(canary ? "Check platform_canary_base_url." : "Unset platform_base_url.") +
                  fallback);
}

DoctorCheck clock_check(std::optional<std::int64_t> offset_s, const std::string& origin) {
  const std::string id = "clock";
  const std::string title = "Clock";
  if (!offset_s) {
    return make(id, title, Verdict::warn, "not measured: no platform answer carried a Date header",
                "See the platform lines; the clock is checked once the platform answers.");
  }
  const std::int64_t off = std::llabs(*offset_s);
  // offset = platform − hub: positive means the hub is behind.
  const std::string how = "hub clock is off by " + std::to_string(off) + " s (" +
                          (*offset_s > 0 ? "behind " : "ahead of ") + origin + ")";
  if (off > kClockFailSeconds) {
    return make(id, title, Verdict::fail,
                how + ": the platform rejects signatures more than 300 s off",
                "Fix the host's time (NTP; Settings → System → General). The agent signs with "
                "the platform's time meanwhile, but pairing from the doctor and other devices "
                "may fail.");
  }
  if (off > kClockWarnSeconds) {
    return make(id, title, Verdict::warn, how + "; the platform accepts up to 300 s",
                "Fix the host's time (NTP; Settings → System → General) before it drifts "
                "further.");
  }
  return make(id, title, Verdict::ok,
              "hub clock within " + std::to_string(off) + " s of " + origin);
}

DoctorReport run_doctor(const DoctorContext& c) {
  DoctorReport report;
  report.at = clock::iso8601();
  const auto deadline = std::chrono::steady_clock::now() + kDoctorTotalTimeout;
  auto collector = std::make_shared<Collector>();
  const Options& o = c.options;
  const std::string serial(text::trim(o.hub_agent_id));
  const std::string bootstrap(text::trim(o.hub_agent_secret));
  const bool probe = c.probe_pairing && !serial.empty() && !bootstrap.empty();

  std::vector<std::pair<std::string, std::string>> origins;
  if (o.platform_sync_enabled) {
    origins.emplace_back("primary", o.platform_base_url);
    // As the sync: a canary on the primary's own origin is no second origin.
    if (!o.platform_canary_base_url.empty() &&
        origin_of(o.platform_canary_base_url) != origin_of(o.platform_base_url)) {
      origins.emplace_back("canary", o.platform_canary_base_url);
    }
  }
  for (const auto& [role, base] : origins) {
    spawn(
        collector,
        {make("platform_" + role, "Platform (" + role + ") " + origin_of(base), Verdict::fail, "")},
        [role = role, base = base, serial, bootstrap,
         probe](const std::shared_ptr<Collector>& out) {
          check_origin(*out, role, base, serial, bootstrap, probe);
        });
  }

  // Home Assistant. A loop of our own must outlive every call made on it: the check holds it.
  std::shared_ptr<OwnLoop> own_loop;
  std::optional<ha_client::HaClientConfig> ha;
  try {
    ha = ha_client_config(o, c.env);
  } catch (const std::exception& e) {
    const std::string bad = std::string("DINODIA_SUPERVISOR_URL is invalid: ") + e.what();
    collector->put(make("supervisor", "Supervisor " + c.env.supervisor_url, Verdict::fail, bad,
                        "Reinstall the add-on (the Supervisor sets this address)."));
  }
  if (ha && ha->supervisor_token.empty()) {
    const std::string missing =
        "SUPERVISOR_TOKEN is not set: the agent cannot reach Home "
        "Assistant";
    const std::string action = "Restart the add-on. If it stays, reinstall it.";
    collector->put(
        make("supervisor", "Supervisor " + c.env.supervisor_url, Verdict::fail, missing, action));
    collector->put(make("home_assistant", "Home Assistant Core", Verdict::fail, missing, action));
    collector->put(
        make("lan_address", "LAN address", Verdict::fail, "unknown: " + missing, action));
  } else if (ha) {
    boost::asio::io_context* io = c.io;
    if (io == nullptr) {
      own_loop = std::make_shared<OwnLoop>();
      io = &own_loop->io();
    }
    spawn(collector,
          {make("supervisor", "Supervisor " + c.env.supervisor_url, Verdict::fail, ""),
           make("home_assistant", "Home Assistant Core", Verdict::fail, ""),
           make("lan_address", "LAN address", Verdict::fail, "")},
          [io, own_loop, config = *ha, url = c.env.supervisor_url,
           sync = o.platform_sync_enabled](const std::shared_ptr<Collector>& out) {
            check_home_assistant(out, *io, config, url, sync);
          });
  }

  const bool held = c.port_held_here && c.port_held_here();
  spawn(collector, {make("port", "Port " + std::to_string(o.port), Verdict::fail, "")},
        [port = o.port, bind = c.env.bind_address, held](const std::shared_ptr<Collector>& out) {
          out->put(port_check(port, bind, held));
        });

  // From the state database, here: quick, and the store lives only as long as this call.
  collector->put(pairing_check(o, c.store));

  {
    std::unique_lock lock(collector->mutex);
    collector->cv.wait_until(lock, deadline, [&] { return collector->running == 0; });
    for (auto& [id, placeholder] : collector->placeholders) {
      if (collector->checks.count(id) == 0) collector->checks[id] = placeholder;
    }
    if (o.platform_sync_enabled) {
      std::optional<std::int64_t> offset;
      std::string from;
      for (const auto& [role, base] : origins) {
        auto it = collector->clock_offsets.find(role);
        if (it != collector->clock_offsets.end()) {
          offset = it->second;
          from = origin_of(base);
          break;
        }
      }
      collector->checks["clock"] = clock_check(offset, from);
    }
    for (const auto& id : check_order()) {
      auto it = collector->checks.find(id);
      if (it != collector->checks.end()) report.checks.push_back(it->second);
    }
  }
  return report;
}

std::vector<std::string> doctor_report_lines(const DoctorReport& report) {
  std::vector<std::string> lines;
  for (const auto& c : report.checks) {
    const char* word = c.verdict == Verdict::ok     ? "ok"
                       : c.verdict == Verdict::warn ? "WARN"
                                                    : "FAIL";
    std::string line = std::string(word) + " " + c.title + ": " + c.detail;
    if (!c.action.empty()) line += ". Action: " + c.action;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string doctor_summary(const DoctorReport& report) {
  const std::size_t fails = report.count(Verdict::fail);
  const std::size_t warns = report.count(Verdict::warn);
  if (fails == 0 && warns == 0) return "All checks passed.";
  return std::to_string(fails) + " failure(s), " + std::to_string(warns) + " warning(s), " +
         std::to_string(report.count(Verdict::ok)) + " ok.";
}

nlohmann::ordered_json doctor_report_json(const DoctorReport& report) {
  nlohmann::ordered_json j;
  j["ok"] = report.count(Verdict::fail) == 0;
  j["verdict"] = verdict_name(report.overall());
  j["at"] = report.at;
  j["counts"] = {{"ok", report.count(Verdict::ok)},
                 {"warn", report.count(Verdict::warn)},
                 {"fail", report.count(Verdict::fail)}};
  nlohmann::ordered_json checks = nlohmann::ordered_json::array();
  for (const auto& c : report.checks) {
    checks.push_back({{"id", c.id},
                      {"title", c.title},
                      {"verdict", verdict_name(c.verdict)},
                      {"detail", c.detail},
                      {"action", c.action.empty() ? nlohmann::ordered_json(nullptr)
                                                  : nlohmann::ordered_json(c.action)}});
  }
  j["checks"] = std::move(checks);
  return j;
}

}  // namespace dinodia::agent
