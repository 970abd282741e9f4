// The installer diagnostics (agent/doctor.hpp, addon/DOCS.md#installer-diagnostics) end to end:
// the real agent binary, as `dinodia-hub-agent doctor` and as the running agent (its log and
// GET /_dinodia/doctor), against fake_platform and fake_ha. Every verdict is made ok once and
// made to fail once; no report may carry a secret.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/local_server.hpp"
#include "tests/support/process.hpp"

namespace {

using dinodia::testing::AgentProcess;
using dinodia::testing::EnvMap;
using dinodia::testing::FakeHaProcess;
using dinodia::testing::FakePlatformProcess;
using dinodia::testing::free_loopback_port;
using dinodia::testing::http_get;
using dinodia::testing::Process;
using dinodia::testing::TempDir;
using dinodia::testing::write_file;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSerial = "DIN-GB-00088";
constexpr const char* kBootstrap = "bootstrap-secret-0a1b2c3d4e";
constexpr const char* kSupervisorToken = "sup-token-doctor-5e6f7a";
constexpr const char* kStatusToken = "status-token-doctor-8b9c0d";

// Listener 1 has backend vercel (no /api/health), listener 2 backend aws (GET /api/health).
dinodia::testing::FakePlatformOptions two_listeners(std::vector<std::string> extra = {}) {
  return {"vercel", true, std::move(extra)};
}

Json agent_options(const std::string& primary, const std::string& canary = "") {
  Json options = dinodia::testing::sync_agent_options(kSerial, kBootstrap, kStatusToken, primary);
  options["port"] = free_loopback_port();
  options["platform_canary_base_url"] = canary;
  return options;
}

AgentProcess make_agent(const TempDir& data, const std::string& supervisor_url,
                        EnvMap env = dinodia::testing::fast_sync_env()) {
  return AgentProcess({data.path(), "", supervisor_url, kSupervisorToken, std::move(env), 40s});
}

struct CliRun {
  int code = -1;
  std::string out;
};

// `dinodia-hub-agent doctor` with these options, data directory and Supervisor.
CliRun doctor_cli(const TempDir& dir, const Json& options, const std::string& supervisor_url,
                  const std::string& log, EnvMap extra = {}) {
  write_file(dir.file("cli-options.json"), options.dump());
  EnvMap env{{"DINODIA_OPTIONS_PATH", dir.file("cli-options.json")},
             {"DINODIA_DATA_DIR", dir.path()},
             {"DINODIA_SUPERVISOR_URL", supervisor_url},
             {"SUPERVISOR_TOKEN", kSupervisorToken},
             // The port check binds as the agent would; on 0.0.0.0 it would also meet the
             // TIME_WAIT client ports other tests leave on 127.0.0.N (ctest -j2).
             {"DINODIA_BIND_ADDRESS", "127.0.0.1"}};
  for (const auto& [k, v] : extra) env[k] = v;
  Process p({dinodia::testing::agent_binary(), "doctor"}, env, dir.file(log));
  const auto code = p.wait(60s);
  INFO(p.log());
  REQUIRE(code.has_value());
  return {*code, p.log()};
}

// The line of `text` that starts with `prefix` (a verdict and a check title), or "".
std::string line_starting(const std::string& text, const std::string& prefix) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const std::size_t at = line.find(prefix);
    // The CLI prints the verdict first; the agent's log puts "[...] INFO Doctor " before it.
    if (at == 0 ||
        (at != std::string::npos && at >= 7 && line.compare(at - 7, 7, "Doctor ") == 0)) {
      return line;
    }
    start = end + 1;
  }
  return "";
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

void check_no_secrets(const std::string& text, const std::string& sync_secret = "") {
  std::vector<std::string> secrets{kBootstrap, kSupervisorToken, kStatusToken};
  if (!sync_secret.empty()) secrets.push_back(sync_secret);
  dinodia::testing::check_no_secrets(text, secrets, "doctor report");
}

std::string sync_secret_of(const FakePlatformProcess& platform) {
  const Json s = platform.state();
  return s["hub"]["syncSecret"].is_string() ? s["hub"]["syncSecret"].get<std::string>() : "";
}

// A program that holds a loopback port: it listens, and never answers.
class PortHolder {
 public:
  explicit PortHolder(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
  }
  ~PortHolder() { ::close(fd_); }
  PortHolder(const PortHolder&) = delete;
  PortHolder& operator=(const PortHolder&) = delete;

 private:
  int fd_ = -1;
};

Json doctor_json(int port, const std::string& token) {
  auto r = http_get(port, "/_dinodia/doctor", {{"Authorization", "Bearer " + token}});
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  return Json::parse(r->body);
}

Json check_of(const Json& report, const std::string& id) {
  for (const auto& c : report["checks"]) {
    if (c["id"] == id) return c;
  }
  FAIL("no check " << id << " in " << report.dump());
  return {};
}

}  // namespace

TEST_CASE("doctor: a healthy hub passes every check, in the start-up log and at the endpoint",
          "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.url());
  // Primary on the AWS listener (healthy /api/health), canary on the Vercel one (no health
  // route behind the Worker, which is healthy too).
  const Json options = agent_options(platform.url(2), platform.url(1));
  const int port = agent.start(options);

  // The start-up report comes after the first sync attempt and after the port opened.
  REQUIRE(agent.wait_log("Doctor report (start-up)", 30s));
  REQUIRE(agent.wait_log("Doctor ok Port", 20s));
  const std::string log = agent.process().log();
  INFO(log);
  const auto report_at = log.find("Doctor report (start-up)");
  CHECK(log.find("Platform sync updated tokens") < report_at);
  CHECK(log.find("INFO Listening") < report_at);
  CHECK(has(log, "Doctor report (start-up): All checks passed."));
  CHECK(has(line_starting(log, "ok Platform (primary) " + platform.url(2)), "healthy"));
  CHECK(has(line_starting(log, "ok Platform (canary) " + platform.url(1)), "Vercel origin"));
  CHECK(has(line_starting(log, "ok Clock"), "hub clock within"));
  CHECK(has(line_starting(log, "ok Pairing"), "sync secret stored"));
  CHECK(has(line_starting(log, "ok Pairing"), "last successful sync"));
  CHECK(has(line_starting(log, "ok Supervisor"), "answers"));
  CHECK(has(line_starting(log, "ok Home Assistant Core"), "answers"));
  CHECK(has(line_starting(log, "ok LAN address"), "http://192.168.1.50:8099"));
  CHECK(has(line_starting(log, "ok Port " + std::to_string(port)), "held by this agent"));
  CHECK_FALSE(has(log, "Doctor WARN"));
  CHECK_FALSE(has(log, "Doctor FAIL"));
  CHECK(agent.process().count_log("Doctor report (") == 1);  // no repeat while all is well

  // The endpoint: the sync-status token as bearer or header; 401 without it.
  auto none = http_get(port, "/_dinodia/doctor");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(none->body == R"({"error":"Unauthorized."})");
  auto wrong = http_get(port, "/_dinodia/doctor", {{"Authorization", "Bearer not-the-token"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto almost = http_get(port, "/_dinodia/doctor",
                         {{"x-dinodia-sync-status-token", std::string(kStatusToken) + "x"}});
  REQUIRE(almost);
  CHECK(almost->status == 401);
  auto by_header =
      http_get(port, "/_dinodia/doctor", {{"x-dinodia-sync-status-token", kStatusToken}});
  REQUIRE(by_header);
  CHECK(by_header->status == 200);
  const Json report = doctor_json(port, kStatusToken);
  INFO(report.dump(2));
  CHECK(report["ok"] == true);
  CHECK(report["verdict"] == "ok");
  for (const char* id : {"platform_primary", "platform_canary", "clock", "pairing", "supervisor",
                         "home_assistant", "lan_address", "port"}) {
    CHECK(check_of(report, id)["verdict"] == "ok");
  }
  CHECK(report["counts"]["fail"] == 0);

  const std::string secret = sync_secret_of(platform);
  REQUIRE_FALSE(secret.empty());
  check_no_secrets(report.dump(), secret);
  check_no_secrets(by_header->body, secret);
  agent.stop();
  check_no_secrets(agent.all_logs(), secret);
}

TEST_CASE("doctor: the endpoint does not exist without sync_status_token", "[doctor]") {
  TempDir dir;
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.url());
  Json options = dinodia::testing::lan_agent_options("hub-token-doctor-1234");
  const int port = agent.start(options);
  auto r = http_get(port, "/_dinodia/doctor", {{"Authorization", "Bearer anything"}});
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body == R"({"error":"Not found."})");
  // Without platform sync the start-up report still comes, right after the port opened.
  REQUIRE(agent.wait_log("Doctor report (start-up)", 20s));
  REQUIRE(agent.wait_log("Doctor ok Port", 20s));
  const std::string log = agent.process().log();
  INFO(log);
  CHECK(has(line_starting(log, "WARN Pairing"), "platform_sync_enabled is off"));
  CHECK(line_starting(log, "ok Platform").empty());  // no platform to check
  agent.stop();
  agent.check_logs_have_no_secrets({"hub-token-doctor-1234", kSupervisorToken});
}

TEST_CASE("doctor: /api/health answering 503 or 404 is not healthy", "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  const Json options = agent_options(platform.url(2));

  SECTION("the command line") {
    CliRun ok = doctor_cli(dir, options, ha.url(), "doctor-ok.log");
    INFO(ok.out);
    CHECK(has(line_starting(ok.out, "ok Platform (primary)"), "reachable and healthy"));

    platform.failure("503", 2);
    CliRun down = doctor_cli(dir, options, ha.url(), "doctor-503.log");
    INFO(down.out);
    CHECK(down.code == 1);
    const std::string line = line_starting(down.out, "FAIL Platform (primary)");
    CHECK(has(line, "not healthy"));
    CHECK(has(line, "HTTP 503"));
    CHECK(has(line, "Action: "));

    platform.failure("404", 2);
    CliRun missing = doctor_cli(dir, options, ha.url(), "doctor-404.log");
    INFO(missing.out);
    CHECK(missing.code == 1);
    CHECK(has(line_starting(missing.out, "FAIL Platform (primary)"), "HTTP 404"));
    CHECK(has(line_starting(missing.out, "FAIL Platform (primary)"), "platform_base_url"));
    check_no_secrets(ok.out + down.out + missing.out);
  }
  SECTION("the running agent's endpoint") {
    AgentProcess agent = make_agent(dir, ha.url());
    const int port = agent.start(options);
    REQUIRE(agent.wait_log("Platform sync updated tokens", 20s));
    CHECK(check_of(doctor_json(port, kStatusToken), "platform_primary")["verdict"] == "ok");
    platform.failure("503", 2);
    const Json report = doctor_json(port, kStatusToken);
    INFO(report.dump(2));
    const Json c = check_of(report, "platform_primary");
    CHECK(c["verdict"] == "fail");
    CHECK(has(c["detail"].get<std::string>(), "HTTP 503"));
    CHECK(report["ok"] == false);
    platform.failure("none");
    agent.stop();
  }
}

TEST_CASE("doctor: TLS errors are named as such", "[doctor]") {
  TempDir dir;
  auto cert = dinodia::testing::make_cert(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
  dinodia::testing::LocalServer server(
      std::make_unique<httplib::SSLServer>(cert.cert.c_str(), cert.key.c_str()));
  server.http().Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"ok":true})", "application/json");
  });
  server.start();
  const Json options = agent_options("https://127.0.0.1:" + std::to_string(server.port()));

  CliRun untrusted = doctor_cli(dir, options, "http://127.0.0.1:9", "doctor-tls.log");
  INFO(untrusted.out);
  CHECK(untrusted.code == 1);
  const std::string line = line_starting(untrusted.out, "FAIL Platform (primary)");
  CHECK(has(line, "TLS error"));
  CHECK(has(line, "certificate"));

  CliRun trusted = doctor_cli(dir, options, "http://127.0.0.1:9", "doctor-tls-ok.log",
                              {{"SSL_CERT_FILE", cert.cert}});
  INFO(trusted.out);
  CHECK(has(line_starting(trusted.out, "ok Platform (primary)"), "reachable and healthy"));
}

TEST_CASE("doctor: a platform clock 10 minutes off fails the clock check", "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners({"--clock-offset", "600"}));
  FakeHaProcess ha(dir, kSupervisorToken);
  const Json options = agent_options(platform.url(2));
  CliRun skewed = doctor_cli(dir, options, ha.url(), "doctor-skew.log");
  INFO(skewed.out);
  CHECK(skewed.code == 1);
  const std::string line = line_starting(skewed.out, "FAIL Clock");
  CHECK((has(line, "hub clock is off by 600 s (behind") ||
         has(line, "hub clock is off by 599 s (behind") ||
         has(line, "hub clock is off by 601 s (behind")));
  CHECK(has(line, "NTP"));

  platform.control("/_fake/config", {{"clockOffsetSeconds", 0}});
  CliRun fixed = doctor_cli(dir, options, ha.url(), "doctor-noskew.log");
  INFO(fixed.out);
  CHECK(has(line_starting(fixed.out, "ok Clock"), "hub clock within"));
}

TEST_CASE("doctor: Home Assistant and the Supervisor down", "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  const Json options = agent_options(platform.url(2));

  CliRun up = doctor_cli(dir, options, ha.url(), "doctor-ha-up.log");
  INFO(up.out);
  CHECK(has(line_starting(up.out, "ok Supervisor"), "answers"));
  CHECK(has(line_starting(up.out, "ok Home Assistant Core"), "answers"));
  CHECK(has(line_starting(up.out, "ok LAN address"), "192.168.1.50"));

  // The Supervisor answers, Home Assistant Core does not (the Supervisor's proxy says 502).
  ha.control("/_fake/core?running=0");
  CliRun core_down = doctor_cli(dir, options, ha.url(), "doctor-core-down.log");
  INFO(core_down.out);
  CHECK(core_down.code == 1);
  CHECK(has(line_starting(core_down.out, "ok Supervisor"), "answers"));
  CHECK(has(line_starting(core_down.out, "FAIL Home Assistant Core"), "HTTP 502"));
  ha.control("/_fake/core?running=1");

  // No Supervisor at all.
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  CliRun gone = doctor_cli(dir, options, dead, "doctor-sup-down.log");
  INFO(gone.out);
  CHECK(gone.code == 1);
  CHECK(has(line_starting(gone.out, "FAIL Supervisor"), "unreachable"));
  CHECK(has(line_starting(gone.out, "FAIL Home Assistant Core"), "unreachable"));
  CHECK(has(line_starting(gone.out, "FAIL LAN address"), "Supervisor"));

  // No private address on any interface: nothing the platform could hand to the apps.
  ha.post(
      "/_fake/set",
      {{"network_info",
        {{"interfaces", Json::array({{{"interface", "eth0"},
                                      {"enabled", true},
                                      {"connected", true},
                                      {"primary", true},
                                      {"ipv4", {{"address", Json::array({"8.8.8.8/24"})}}}}})}}}});
  CliRun no_lan = doctor_cli(dir, options, ha.url(), "doctor-no-lan.log");
  INFO(no_lan.out);
  CHECK(has(line_starting(no_lan.out, "FAIL LAN address"), "no private IPv4 address"));
  check_no_secrets(up.out + core_down.out + gone.out + no_lan.out);
}

TEST_CASE("doctor: the port taken by another program fails, free or held by the agent is ok",
          "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  const Json options = agent_options(platform.url(2));
  const int port = options["port"];
  const std::string title = "Port " + std::to_string(port);
  const EnvMap loopback{{"DINODIA_BIND_ADDRESS", "127.0.0.1"}};

  CliRun free_port = doctor_cli(dir, options, ha.url(), "doctor-port-free.log", loopback);
  INFO(free_port.out);
  CHECK(has(line_starting(free_port.out, "ok " + title), "free"));
  {
    PortHolder holder(port);
    CliRun taken = doctor_cli(dir, options, ha.url(), "doctor-port-taken.log", loopback);
    INFO(taken.out);
    CHECK(taken.code == 1);
    const std::string line = line_starting(taken.out, "FAIL " + title);
    CHECK(has(line, "in use by another program"));
    CHECK(has(line, "Action: "));
  }
  AgentProcess agent = make_agent(dir, ha.url());
  agent.start(options);
  CliRun held = doctor_cli(dir, options, ha.url(), "doctor-port-held.log", loopback);
  INFO(held.out);
  CHECK(has(line_starting(held.out, "ok " + title), "held by the running agent"));
  agent.stop();
}

TEST_CASE("doctor: an unpaired hub fails the pairing check", "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);

  SECTION("nothing ran here yet") {
    CliRun fresh = doctor_cli(dir, agent_options(platform.url(2)), ha.url(), "doctor-fresh.log");
    INFO(fresh.out);
    CHECK(fresh.code == 1);
    CHECK(has(line_starting(fresh.out, "FAIL Pairing"), "not paired"));
  }
  SECTION("the platform does not know the serial: the start-up log says so") {
    Json options = agent_options(platform.url(2));
    options["hub_agent_id"] = "DIN-GB-99999";
    AgentProcess agent = make_agent(dir, ha.url());
    const int port = agent.start(options);
    REQUIRE(agent.wait_log("Doctor report (start-up)", 30s));
    REQUIRE(agent.wait_log("Doctor ok Port", 20s));
    const std::string log = agent.process().log();
    INFO(log);
    const std::string line = line_starting(log, "FAIL Pairing");
    CHECK(has(line, "not paired"));
    CHECK(has(line, "unknown_serial"));
    CHECK(has(line, "DIN-GB-99999"));
    CHECK(has(line, "WARN"));  // a fail is a WARN line: the agent itself keeps running
    CHECK(check_of(doctor_json(port, kStatusToken), "pairing")["verdict"] == "fail");
    agent.stop();
    check_no_secrets(agent.all_logs());
  }
}

TEST_CASE("doctor: failed sync cycles repeat the report, at most once per interval", "[doctor]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  EnvMap env = dinodia::testing::fast_sync_env();
  env["DINODIA_DOCTOR_REPORT_SECONDS"] = "3";
  AgentProcess agent = make_agent(dir, ha.url(), env);
  agent.start(agent_options(platform.url(2)));
  REQUIRE(agent.wait_log("Doctor report (start-up)", 30s));
  platform.failure("503");
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(agent.wait_log("Doctor report (after a failed sync)", 20s));
  std::this_thread::sleep_for(8s);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string log = agent.process().log();
  INFO(log);
  const auto reports = agent.process().count_log("Doctor report (after a failed sync)");
  const auto failures = agent.process().count_log("Platform sync failed");
  CHECK(reports >= 2);
  CHECK(reports <= static_cast<std::size_t>(seconds / 3) + 1);
  CHECK(failures > 2 * reports);  // many failed cycles, few reports
  CHECK(has(line_starting(log, "FAIL Platform (primary)"), "HTTP 503"));
  platform.failure("none");
  agent.stop();
  check_no_secrets(agent.all_logs(), sync_secret_of(platform));
}
