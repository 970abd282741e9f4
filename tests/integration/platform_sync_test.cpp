// The agent's platform sync end to end (issue #3): the real agent binary against the fake
// platform (tests/fakes/fake_platform*, Part A exactly) and fake_ha behind the LAN bridge, over
// real sockets. Every scenario also checks that no secret reached the log and that the platform
// never saw a nonce twice.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.hpp"
#include "tests/support/process.hpp"

namespace {

using dinodia::testing::Process;
using dinodia::testing::TempDir;
using dinodia::testing::write_file;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSerial = "DIN-GB-00077";
constexpr const char* kBootstrap = "bootstrap-secret-9f8e7d6c";
constexpr const char* kSupervisorToken = "sup-token-51c0ffee77";
constexpr const char* kStatusToken = "sync-status-token-abc123";

// A port nothing listens on right now (the agent's options need a concrete port).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

httplib::Result http_get(int port, const std::string& path, const httplib::Headers& h = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  return c.Get(path.c_str(), h);
}

httplib::Result http_post(int port, const std::string& path, const Json& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  return c.Post(path.c_str(), body.dump(), "application/json");
}

struct FakePlatform {
  std::unique_ptr<Process> proc;
  int port = 0;   // listener 1 (backend vercel)
  int port2 = 0;  // listener 2 (backend aws)

  FakePlatform(const TempDir& dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{dinodia::testing::fake_platform_binary(),
                                  "--port",
                                  "0",
                                  "--port2",
                                  "0",
                                  "--backend",
                                  "vercel",
                                  "--backend2",
                                  "aws"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                     dir.file("platform.log"));
    auto l2 = proc->wait_for_log("LISTENING2 ", 10s);
    REQUIRE(l2.has_value());
    port2 = std::atoi(l2->c_str() + l2->find("LISTENING2 ") + 11);
    auto l1 = proc->wait_for_log("LISTENING ", 10s);
    REQUIRE(l1.has_value());
    port = dinodia::testing::port_from_line(*l1);
    REQUIRE(port > 0);
    REQUIRE(port2 > 0);
    auto r =
        http_post(port, "/_fake/provision", {{"serial", kSerial}, {"bootstrapSecret", kBootstrap}});
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  std::string url(int which = 1) const {
    return "http://127.0.0.1:" + std::to_string(which == 1 ? port : port2);
  }
  Json state() const {
    auto r = http_get(port, std::string("/_fake/state?serial=") + kSerial);
    REQUIRE(r);
    return Json::parse(r->body);
  }
  // The token home-mode/secrets would hand a client right now, if one is published.
  std::optional<std::string> published_token() const {
    auto r = http_get(port, std::string("/_fake/published-token?serial=") + kSerial);
    if (!r || r->status != 200) return std::nullopt;
    return Json::parse(r->body).at("token").get<std::string>();
  }
  void failure(const std::string& mode, int listener = 0, int seconds = 0) const {
    Json b{{"mode", mode}};
    if (listener) b["listener"] = listener;
    if (seconds) b["seconds"] = seconds;
    auto r = http_post(port, "/_fake/failure", b);
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  void check_no_duplicate_nonces() const {
    Json s = state();
    INFO("nonces seen: " << s["nonceCount"]);
    CHECK(s["duplicateNonceAttempts"] == 0);
    CHECK(s["replaysRejected"] == 0);
  }
};

struct FakeHa {
  std::unique_ptr<Process> proc;
  int port = 0;
  explicit FakeHa(const TempDir& dir) {
    proc = std::make_unique<Process>(
        std::vector<std::string>{dinodia::testing::fake_ha_binary(), "--port", "0", "--token",
                                 kSupervisorToken},
        std::map<std::string, std::string>{}, dir.file("fake_ha.log"));
    auto line = proc->wait_for_log("LISTENING ", 10s);
    REQUIRE(line.has_value());
    port = dinodia::testing::port_from_line(*line);
  }
};

Json agent_options(const std::string& primary, const std::string& canary = "") {
  return Json{{"port", free_port()},
              {"platform_sync_enabled", true},
              {"platform_base_url", primary},
              {"platform_canary_base_url", canary},
              {"hub_agent_id", kSerial},
              {"hub_agent_secret", kBootstrap},
              {"sync_status_token", kStatusToken},
              {"heating_usage_tracking_enabled", false},
              {"electric_usage_tracking_enabled", false}};
}

struct Agent {
  std::unique_ptr<Process> proc;
  int port = 0;
  int run = 0;

  // Starts the agent on `data` with `options`; waits until it listens.
  void start(const TempDir& data, const Json& options, int supervisor_port,
             std::map<std::string, std::string> extra_env = {}) {
    write_file(data.file("options.json"), options.dump());
    std::map<std::string, std::string> env{
        {"DINODIA_OPTIONS_PATH", data.file("options.json")},
        {"DINODIA_DATA_DIR", data.path()},
        {"DINODIA_SUPERVISOR_URL", "http://127.0.0.1:" + std::to_string(supervisor_port)},
        {"DINODIA_BIND_ADDRESS", "127.0.0.1"},
        {"DINODIA_SYNC_INTERVAL_SECONDS", "1"},
        {"SUPERVISOR_TOKEN", kSupervisorToken},
        {"DINODIA_TOKEN_STATE_PATH", ""}};
    for (auto& [k, v] : extra_env) env[k] = v;
    ++run;
    proc = std::make_unique<Process>(std::vector<std::string>{dinodia::testing::agent_binary()},
                                     env, data.file("agent-" + std::to_string(run) + ".log"));
    auto line = proc->wait_for_log("INFO Listening", 40s);
    INFO(proc->log());
    REQUIRE(line.has_value());
    port = dinodia::testing::port_from_line(*line);
    REQUIRE(port > 0);
  }
  int api_status(const std::string& token) const {
    auto r = http_get(port, "/api/", {{"Authorization", "Bearer " + token}});
    return r ? r->status : 0;
  }
  Json sync_status() const {
    auto r = http_get(port, "/_dinodia/sync-status",
                      {{"Authorization", std::string("Bearer ") + kStatusToken}});
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return Json::parse(r->body);
  }
  bool wait_log(const std::string& needle, std::chrono::milliseconds t = 20s) const {
    return proc->wait_for_log(needle, t).has_value();
  }
  // Waits until the log holds at least `n` lines with `needle`.
  bool wait_count(const std::string& needle, std::size_t n, std::chrono::milliseconds t) const {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < deadline) {
      if (proc->count_log(needle) >= n) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  void stop() {
    if (!proc) return;
    proc->signal(SIGTERM);
    auto code = proc->wait(20s);
    CHECK(code == std::optional<int>(0));
  }
};

// Every log written in `dir` (agent runs) must be free of every secret in play.
void check_no_secrets(const TempDir& dir, const FakePlatform& platform, int runs,
                      const std::vector<std::string>& tokens_seen = {}) {
  Json s = platform.state();
  std::vector<std::string> secrets{kBootstrap, kSupervisorToken, kStatusToken};
  if (s["hub"].is_object() && s["hub"]["syncSecret"].is_string()) {
    secrets.push_back(s["hub"]["syncSecret"]);
  }
  for (const auto& t : tokens_seen) secrets.push_back(t);
  for (int run = 1; run <= runs; ++run) {
    const std::string log =
        dinodia::testing::read_file(dir.file("agent-" + std::to_string(run) + ".log"));
    for (const auto& secret : secrets) {
      INFO("run " << run << " secret " << secret.substr(0, 6) << "...");
      CHECK(log.find(secret) == std::string::npos);
    }
  }
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("first pairing - published token accepted - state files private", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir);
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url()), ha.port);
  // Hashes were empty and sync is enabled: the agent paired before opening the port.
  CHECK(agent.proc->count_log("Paired with platform") == 1);
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  // The first token-state acknowledged v1, so v1 is published and accepted.
  std::optional<std::string> token;
  for (int i = 0; i < 50 && !token; ++i) {
    token = platform.published_token();
    if (!token) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(token.has_value());
  CHECK(agent.api_status(*token) == 200);
  CHECK(agent.api_status(std::string(64, 'f')) == 401);
  Json st = agent.sync_status();
  CHECK(st["hasSyncSecret"] == true);
  CHECK(st["agentSeenVersion"].get<int>() >= 1);
  CHECK(mode_of(dir.file("dinodia-agent.db")) == 0600);
  CHECK(mode_of(dir.file("dinodia_token_state.json")) == 0600);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run, {*token});
}

TEST_CASE("sync-status endpoint: 404 unless the configured token is presented", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url(), platform.url(2)), 9);
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  auto no_token = http_get(agent.port, "/_dinodia/sync-status");
  REQUIRE(no_token);
  CHECK(no_token->status == 404);
  CHECK(no_token->body == R"({"error":"Not found."})");
  auto wrong = http_get(agent.port, "/_dinodia/sync-status", {{"Authorization", "Bearer nope"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 404);
  auto by_header =
      http_get(agent.port, "/_dinodia/sync-status",
               {{"x-dinodia-sync-status-token", std::string(" ") + kStatusToken + " "}});
  REQUIRE(by_header);
  CHECK(by_header->status == 200);
  auto by_query = http_get(agent.port, std::string("/_dinodia/sync-status?token=") + kStatusToken);
  REQUIRE(by_query);
  CHECK(by_query->status == 200);
  Json st = agent.sync_status();
  CHECK(st["ok"] == true);
  CHECK(st["platformSyncEnabled"] == true);
  CHECK(st["hashes"].get<int>() >= 1);
  // Follows the option (legacy always said true, §17 item 30); these tests disable tracking.
  CHECK(st["electricUsage"]["enabled"] == false);
  REQUIRE(st["origins"].is_array());
  bool canary_seen = false;
  for (const auto& o : st["origins"]) {
    if (o["role"] == "canary") {
      canary_seen = true;
      CHECK(o["successes"].get<int>() >= 1);
      CHECK(o["lastBackend"] == "aws");
    }
  }
  CHECK(canary_seen);
  agent.stop();

  // Without sync_status_token the endpoint does not exist.
  Json opts = agent_options(platform.url());
  opts["sync_status_token"] = "";
  agent.start(dir, opts, 9);
  auto disabled = http_get(agent.port, "/_dinodia/sync-status", {{"Authorization", "Bearer "}});
  REQUIRE(disabled);
  CHECK(disabled->status == 404);
  agent.stop();
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("20 accelerated rotations: clients using the published token never get 401", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir, {"--rotate-seconds", "2", "--grace-seconds", "1"});
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url()), ha.port);
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, unauthorized{0}, other{0};
  std::vector<std::string> tokens_seen;
  std::mutex tokens_mutex;
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&] {
      while (!done) {
        auto token = platform.published_token();
        if (!token) {
          std::this_thread::sleep_for(20ms);
          continue;
        }
        int status = agent.api_status(*token);
        if (status == 200) {
          ++ok;
        } else if (status == 401) {
          ++unauthorized;
        } else {
          ++other;
        }
        std::lock_guard lock(tokens_mutex);
        if (tokens_seen.empty() || tokens_seen.back() != *token) tokens_seen.push_back(*token);
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 150s;
  std::int64_t published = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    published = platform.state()["hub"]["publishedVersion"].get<std::int64_t>();
    if (published >= 21) break;
    std::this_thread::sleep_for(200ms);
  }
  done = true;
  for (auto& t : clients) t.join();
  INFO("published " << published << " ok " << ok << " 401 " << unauthorized << " other " << other);
  CHECK(published >= 21);
  CHECK(unauthorized == 0);
  CHECK(other == 0);
  CHECK(ok > 100);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run, tokens_seen);
}

TEST_CASE("kill -9 at random points: pairing kept - acknowledged versions always stored",
          "[sync]") {
  TempDir dir;
  FakePlatform platform(dir, {"--rotate-seconds", "1", "--grace-seconds", "1"});
  FakeHa ha(dir);
  Agent agent;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(100, 2500);
  const Json options = agent_options(platform.url());
  for (int round = 0; round < 10; ++round) {
    platform.failure("none");
    agent.start(dir, options, ha.port);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    agent.proc->signal(SIGKILL);
    agent.proc->wait(5s);

    // Restart while the platform refuses everything: what the agent accepts now is exactly
    // what it had stored when it was killed.
    platform.failure("500");
    agent.start(dir, options, ha.port);
    Json hub = platform.state()["hub"];
    auto token = platform.published_token();
    INFO("round " << round << " hub " << hub.dump());
    if (round > 0) {
      CHECK(agent.proc->count_log("Paired with platform") == 0);  // pairing survived
    }
    if (token) CHECK(agent.api_status(*token) == 200);
    Json st = agent.sync_status();
    CHECK(st["hasSyncSecret"] == true);
    CHECK(st["agentSeenVersion"].get<std::int64_t>() >=
          hub["lastAckedVersion"].get<std::int64_t>());
    agent.proc->signal(SIGKILL);
    agent.proc->wait(5s);
  }
  platform.failure("none");
  platform.check_no_duplicate_nonces();
  CHECK(platform.state()["requestCounts"].value("pair@1", 0) == 1);
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("platform 500 / 401 / 404 / malformed / down: last hashes keep serving - recovery",
          "[sync]") {
  TempDir dir;
  FakePlatform platform(dir);
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url()), ha.port);
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  std::optional<std::string> token;
  for (int i = 0; i < 50 && !token; ++i) {
    token = platform.published_token();
    if (!token) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(token);
  for (const std::string mode : {"500", "401", "404", "malformed"}) {
    INFO("mode " << mode);
    platform.failure(mode);
    const std::size_t failed_before = agent.proc->count_log("Platform sync failed");
    REQUIRE(agent.wait_count("Platform sync failed", failed_before + 2, 15s));
    CHECK(agent.api_status(*token) == 200);  // last hashes still in force
    const std::size_t updated_before = agent.proc->count_log("Platform sync updated tokens");
    platform.failure("none");
    CHECK(agent.wait_count("Platform sync updated tokens", updated_before + 1, 15s));
  }
  const Json st = agent.sync_status();
  CHECK(st["origins"][0]["failures"].get<int>() >= 8);
  CHECK(agent.proc->count_log("keeping the last accepted hashes") >= 1);  // the 404 case

  // Down: the platform process is gone entirely.
  platform.proc->signal(SIGKILL);
  platform.proc->wait(5s);
  const std::size_t failed_before = agent.proc->count_log("Platform sync failed");
  REQUIRE(agent.wait_count("Platform sync failed", failed_before + 2, 15s));
  CHECK(agent.api_status(*token) == 200);
  // Back-off, not a hot loop: in 3 s at most a handful of attempts.
  const std::size_t before = agent.proc->count_log("Platform sync failed");
  std::this_thread::sleep_for(3s);
  CHECK(agent.proc->count_log("Platform sync failed") - before <= 10);
  agent.stop();
}

TEST_CASE("platform hangs longer than the timeout: request abandoned - sync recovers",
          "[sync][slow]") {
  TempDir dir;
  FakePlatform platform(dir);
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url()), ha.port);
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  auto token = platform.published_token();
  REQUIRE(token);
  platform.failure("hang", 0, 40);
  const std::size_t failed_before = agent.proc->count_log("Platform sync failed");
  REQUIRE(agent.wait_count("Platform sync failed", failed_before + 1, 30s));
  CHECK(agent.proc->log().find("timeout") != std::string::npos);
  CHECK(agent.api_status(*token) == 200);
  const std::size_t updated_before = agent.proc->count_log("Platform sync updated tokens");
  platform.failure("none");
  CHECK(agent.wait_count("Platform sync updated tokens", updated_before + 1, 40s));
  // SIGTERM while a request hangs: the agent still exits 0 promptly (the sync thread is not
  // waited for beyond a few seconds; all state is in committed transactions).
  platform.failure("hang", 0, 40);
  std::this_thread::sleep_for(2500ms);
  const auto t0 = std::chrono::steady_clock::now();
  agent.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  platform.failure("none");
  platform.check_no_duplicate_nonces();
}

TEST_CASE("skewed hub clock: offset logged - corrected retry succeeds", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir, {"--clock-offset", "600"});
  Agent agent;
  agent.start(dir, agent_options(platform.url()), 9);
  REQUIRE(agent.wait_log("Hub clock differs from the platform clock"));
  auto line = agent.proc->wait_for_log("Hub clock differs from the platform clock", 1s);
  REQUIRE(line);
  CHECK((line->find("offsetSeconds: 600") != std::string::npos ||
         line->find("offsetSeconds: 599") != std::string::npos ||
         line->find("offsetSeconds: 601") != std::string::npos));
  REQUIRE(agent.wait_log("Paired with platform"));
  REQUIRE(agent.wait_count("Platform sync updated tokens", 3, 15s));
  // The offset is kept: only one correction in the whole run.
  CHECK(agent.proc->count_log("Hub clock differs") == 1);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("re-pair after the platform cleared the sync secret", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url()), 9);
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  auto r = http_post(platform.port, "/_fake/clear-sync-secret", {{"serial", kSerial}});
  REQUIRE(r);
  REQUIRE(r->status == 200);
  REQUIRE(agent.wait_log("Platform says the hub is not paired; pairing again", 15s));
  REQUIRE(agent.wait_count("Paired with platform", 2, 15s));
  const std::size_t updated = agent.proc->count_log("Platform sync updated tokens");
  CHECK(agent.wait_count("Platform sync updated tokens", updated + 2, 15s));
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("canary failing with 500: same cycle re-signed to the primary - recorded", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir);
  platform.failure("500", 2);  // listener 2 = the canary (aws)
  Agent agent;
  agent.start(dir, agent_options(platform.url(1), platform.url(2)), 9);
  REQUIRE(agent.wait_log("Platform canary origin failed; falling back to the primary origin"));
  REQUIRE(agent.wait_count("backend: 'vercel'", 2, 15s));
  CHECK(agent.proc->count_log("Platform sync failed") == 0);  // the fallback saved every cycle
  Json st = agent.sync_status();
  bool canary = false, primary = false;
  for (const auto& o : st["origins"]) {
    if (o["role"] == "canary") {
      canary = true;
      CHECK(o["failures"].get<int>() >= 1);
      CHECK(o["lastError"].get<std::string>().find("HTTP 500") != std::string::npos);
    }
    if (o["role"] == "primary") {
      primary = true;
      CHECK(o["successes"].get<int>() >= 1);
      CHECK(o["lastBackend"] == "vercel");
    }
  }
  CHECK(canary);
  CHECK(primary);
  // Canary healthy again: cycles answer from aws.
  platform.failure("none", 2);
  CHECK(agent.wait_log("backend: 'aws'", 15s));
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("origin switch and rollback in options keep pairing - hashes and versions", "[sync]") {
  TempDir dir;
  FakePlatform platform(dir, {"--rotate-seconds", "2", "--grace-seconds", "1"});
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url(1)), ha.port);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 3, 20s));
  agent.stop();
  const std::int64_t acked = platform.state()["hub"]["lastAckedVersion"];

  // Switch to the AWS origin: no pairing again, state carried over.
  agent.start(dir, agent_options(platform.url(2)), ha.port);
  auto token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);  // before any sync on the new origin
  CHECK(agent.sync_status()["agentSeenVersion"].get<std::int64_t>() >= acked);
  REQUIRE(agent.wait_count("backend: 'aws'", 3, 20s));
  CHECK(agent.proc->count_log("Paired with platform") == 0);
  agent.stop();

  // Roll back to Vercel.
  agent.start(dir, agent_options(platform.url(1)), ha.port);
  token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);
  REQUIRE(agent.wait_count("backend: 'vercel'", 2, 20s));
  CHECK(agent.proc->count_log("Paired with platform") == 0);
  agent.stop();
  Json s = platform.state();
  CHECK(s["requestCounts"].value("pair@1", 0) + s["requestCounts"].value("pair@2", 0) == 1);
  platform.check_no_duplicate_nonces();
  check_no_secrets(dir, platform, agent.run);
}

TEST_CASE("upgrade from the legacy agent imports its file - rollback file kept current", "[sync]") {
  TempDir first;
  FakePlatform platform(first, {"--rotate-seconds", "2", "--grace-seconds", "1"});
  FakeHa ha(first);
  // A legacy agent paired this hub: stand in for it with one run in another data folder, then
  // write the file the legacy agent would have left (legacy key variants, untrimmed values).
  {
    Agent legacy;
    legacy.start(first, agent_options(platform.url()), ha.port);
    REQUIRE(legacy.wait_count("Platform sync updated tokens", 2, 20s));
    legacy.stop();
  }
  Json hub = platform.state()["hub"];
  const std::string secret = hub["syncSecret"];
  Json hashes = Json::array();
  for (const auto& h : hub["acceptedHashes"]) hashes.push_back(" " + std::string(h) + " ");
  TempDir data;
  write_file(data.file("dinodia_token_state.json"), Json{{"version", hub["lastAckedVersion"]},
                                                         {"syncSecret", "  " + secret + "  "},
                                                         {"hubTokenHashes", hashes},
                                                         {"updatedAt", "2026-03-17T10:00:00.000Z"}}
                                                        .dump(2));
  platform.failure("500");  // the import alone must make the published token work
  Agent agent;
  agent.start(data, agent_options(platform.url()), ha.port);
  CHECK(agent.proc->count_log("Imported legacy token state") == 1);
  auto token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);
  CHECK(agent.sync_status()["hasSyncSecret"] == true);
  platform.failure("none");
  REQUIRE(agent.wait_count("Platform sync updated tokens", 4, 30s));
  CHECK(agent.proc->count_log("Paired with platform") == 0);  // the imported secret works
  agent.stop();

  // Rollback: the legacy file holds what the platform has acknowledged, in the legacy shape.
  const std::string path = data.file("dinodia_token_state.json");
  CHECK(mode_of(path) == 0600);
  Json file = Json::parse(dinodia::testing::read_file(path));
  Json now = platform.state()["hub"];
  CHECK(file["syncSecret"] == secret);
  CHECK(file["agentSeenVersion"].get<std::int64_t>() >=
        now["lastAckedVersion"].get<std::int64_t>());
  // The token clients hold now is accepted by a legacy agent reading this file.
  auto current = platform.published_token();
  REQUIRE(current);
  bool listed = false;
  for (const auto& h : file["hubTokenHashes"]) listed |= h == dinodia::crypto::sha256_hex(*current);
  CHECK(listed);
  platform.check_no_duplicate_nonces();
  check_no_secrets(data, platform, agent.run, {*token});
}

TEST_CASE("status and doctor subcommands", "[sync][cli]") {
  TempDir dir;
  FakePlatform platform(dir);
  FakeHa ha(dir);
  Agent agent;
  agent.start(dir, agent_options(platform.url(1), platform.url(2)), ha.port);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 15s));
  agent.stop();
  const std::string secret = platform.state()["hub"]["syncSecret"];

  auto run_cli = [&](const std::string& command, const Json& options, const std::string& log) {
    write_file(dir.file("cli-options.json"), options.dump());
    Process p({dinodia::testing::agent_binary(), command},
              {{"DINODIA_OPTIONS_PATH", dir.file("cli-options.json")},
               {"DINODIA_DATA_DIR", dir.path()},
               {"DINODIA_SUPERVISOR_URL", "http://127.0.0.1:" + std::to_string(ha.port)},
               {"SUPERVISOR_TOKEN", kSupervisorToken}},
              dir.file(log));
    auto code = p.wait(60s);
    REQUIRE(code.has_value());
    return std::make_pair(*code, p.log());
  };

  auto [status_code, status_out] =
      run_cli("status", agent_options(platform.url(1), platform.url(2)), "status.log");
  INFO(status_out);
  CHECK(status_code == 0);
  CHECK(status_out.find("Paired: yes (serial DIN-GB-00077") != std::string::npos);
  CHECK(status_out.find("Accepted hashes: 1") != std::string::npos);
  CHECK(status_out.find("backend aws") != std::string::npos);
  CHECK(status_out.find("token-state") != std::string::npos);
  CHECK(status_out.find(secret) == std::string::npos);
  CHECK(status_out.find(kBootstrap) == std::string::npos);

  auto [ok_code, ok_out] =
      run_cli("doctor", agent_options(platform.url(1), platform.url(2)), "doctor1.log");
  INFO(ok_out);
  CHECK(ok_code == 0);
  CHECK(ok_out.find("All checks passed.") != std::string::npos);

  Json wrong_secret = agent_options(platform.url(1));
  wrong_secret["hub_agent_secret"] = "not-the-bootstrap-secret";
  auto [bad_code, bad_out] = run_cli("doctor", wrong_secret, "doctor2.log");
  INFO(bad_out);
  CHECK(bad_code == 1);
  CHECK(bad_out.find("wrong bootstrap secret") != std::string::npos);
  CHECK(bad_out.find("not-the-bootstrap-secret") == std::string::npos);

  Json wrong_serial = agent_options(platform.url(1));
  wrong_serial["hub_agent_id"] = "DIN-GB-99999";
  auto [serial_code, serial_out] = run_cli("doctor", wrong_serial, "doctor3.log");
  INFO(serial_out);
  CHECK(serial_code == 1);
  CHECK(serial_out.find("wrong serial") != std::string::npos);

  Json unreachable = agent_options("http://127.0.0.1:" + std::to_string(free_port()));
  auto [down_code, down_out] = run_cli("doctor", unreachable, "doctor4.log");
  INFO(down_out);
  CHECK(down_code == 1);
  CHECK(down_out.find("unreachable") != std::string::npos);
}

TEST_CASE("doctor reports a skewed hub clock", "[sync][cli]") {
  TempDir dir;
  FakePlatform platform(dir, {"--clock-offset", "600"});
  write_file(dir.file("options.json"), agent_options(platform.url(2)).dump());
  Process p({dinodia::testing::agent_binary(), "doctor"},
            {{"DINODIA_OPTIONS_PATH", dir.file("options.json")},
             {"DINODIA_DATA_DIR", dir.path()},
             {"DINODIA_SUPERVISOR_URL", "http://127.0.0.1:9"},
             {"SUPERVISOR_TOKEN", kSupervisorToken}},
            dir.file("doctor.log"));
  auto code = p.wait(60s);
  INFO(p.log());
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  CHECK((p.log().find("hub clock is off by 600 s") != std::string::npos ||
         p.log().find("hub clock is off by 599 s") != std::string::npos ||
         p.log().find("hub clock is off by 601 s") != std::string::npos));
  CHECK(p.log().find("fix the hub clock first") != std::string::npos);
}
