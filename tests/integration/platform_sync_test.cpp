// The agent's platform sync end to end (docs/platform-protocol.md): the real agent binary against
// the fake platform (tests/fakes/fake_platform*, the platform's routes exactly) and fake_ha behind
// the LAN bridge, over real sockets. Every scenario also checks that no secret reached the log and
// that the platform never saw a nonce twice.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/ws_client.hpp"

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

using dinodia::testing::AgentProcess;
using dinodia::testing::FakeHaProcess;
using dinodia::testing::FakePlatformProcess;
using dinodia::testing::free_loopback_port;
using dinodia::testing::http_get;

// Both listeners: 1 = backend vercel, 2 = backend aws.
dinodia::testing::FakePlatformOptions two_listeners(std::vector<std::string> extra = {}) {
  return {"vercel", true, std::move(extra)};
}

Json agent_options(const std::string& primary, const std::string& canary = "") {
  Json options = dinodia::testing::sync_agent_options(kSerial, kBootstrap, kStatusToken, primary);
  options["port"] = free_loopback_port();  // a concrete port, the same across restarts
  options["platform_canary_base_url"] = canary;
  return options;
}

// The agent with its data and logs in `data`; `supervisor_port` 9 when no fake_ha is needed.
AgentProcess make_agent(const TempDir& data, int supervisor_port) {
  return AgentProcess({data.path(), "", "http://127.0.0.1:" + std::to_string(supervisor_port),
                       kSupervisorToken, dinodia::testing::fast_sync_env(), 40s});
}

// Every agent run's log must be free of every secret in play.
void check_no_secrets(const AgentProcess& agent, const FakePlatformProcess& platform,
                      const std::vector<std::string>& tokens_seen = {}) {
  Json s = platform.state();
  std::vector<std::string> secrets{kBootstrap, kSupervisorToken, kStatusToken};
  if (s["hub"].is_object() && s["hub"]["syncSecret"].is_string()) {
    secrets.push_back(s["hub"]["syncSecret"]);
  }
  for (const auto& t : tokens_seen) secrets.push_back(t);
  agent.check_logs_have_no_secrets(secrets);
}

// Runs a one-shot subcommand (status, doctor) of the agent; returns its exit code and output.
std::pair<int, std::string> run_cli(const TempDir& dir, const std::string& command,
                                    const Json& options, const std::string& supervisor_url,
                                    const std::string& log) {
  write_file(dir.file("cli-options.json"), options.dump());
  Process p({dinodia::testing::agent_binary(), command},
            {{"DINODIA_OPTIONS_PATH", dir.file("cli-options.json")},
             {"DINODIA_DATA_DIR", dir.path()},
             {"DINODIA_SUPERVISOR_URL", supervisor_url},
             {"SUPERVISOR_TOKEN", kSupervisorToken},
             // The doctor's port check binds the port as the agent would; on 0.0.0.0 it also
             // meets the TIME_WAIT client ports other tests leave on 127.0.0.N (ctest -j2).
             {"DINODIA_BIND_ADDRESS", "127.0.0.1"}},
            dir.file(log));
  auto code = p.wait(60s);
  INFO(p.log());
  REQUIRE(code.has_value());
  return {*code, p.log()};
}

// A running agent in front of fake_ha, paired with a platform that rotates the hub token every
// 2 s with 1 s of grace.
struct RotatingHub {
  TempDir dir;
  FakePlatformProcess platform{dir, kSerial, kBootstrap,
                               two_listeners({"--rotate-seconds", "2", "--grace-seconds", "1"})};
  FakeHaProcess ha{dir, kSupervisorToken};
  AgentProcess agent = make_agent(dir, ha.port());
  RotatingHub() { agent.start(agent_options(platform.url())); }
};

// Waits (up to 5 s) for a token the platform publishes, other than `other_than`, that the agent
// already accepts.
std::optional<std::string> accepted_published_token(const FakePlatformProcess& platform,
                                                    const AgentProcess& agent,
                                                    const std::string& other_than = "") {
  for (int i = 0; i < 100; ++i) {
    auto token = platform.published_token();
    if (token && *token != other_than && agent.api_status(*token) == 200) return token;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("first pairing - published token accepted - state files private", "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url()));
  // Hashes were empty and sync is enabled: the agent paired before opening the port.
  CHECK(agent.process().count_log("Paired with platform") == 1);
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
  Json st = agent.sync_status(kStatusToken);
  CHECK(st["hasSyncSecret"] == true);
  CHECK(st["agentSeenVersion"].get<int>() >= 1);
  CHECK(mode_of(dir.file("dinodia-agent.db")) == 0600);
  CHECK(mode_of(dir.file("dinodia_token_state.json")) == 0600);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform, {*token});
}

TEST_CASE("sync-status endpoint: 404 unless the configured token is presented", "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  AgentProcess agent = make_agent(dir, 9);
  agent.start(agent_options(platform.url(), platform.url(2)));
  // The first cycle pairs with the primary; the canary answers from the second on.
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 15s));
  auto no_token = http_get(agent.port(), "/_dinodia/sync-status");
  REQUIRE(no_token);
  CHECK(no_token->status == 404);
  CHECK(no_token->body == R"({"error":"Not found."})");
  auto wrong = http_get(agent.port(), "/_dinodia/sync-status", {{"Authorization", "Bearer nope"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 404);
  auto by_header =
      http_get(agent.port(), "/_dinodia/sync-status",
               {{"x-dinodia-sync-status-token", std::string(" ") + kStatusToken + " "}});
  REQUIRE(by_header);
  CHECK(by_header->status == 200);
  auto by_query =
      http_get(agent.port(), std::string("/_dinodia/sync-status?token=") + kStatusToken);
  REQUIRE(by_query);
  CHECK(by_query->status == 200);
  Json st = agent.sync_status(kStatusToken);
  CHECK(st["ok"] == true);
  CHECK(st["platformSyncEnabled"] == true);
  CHECK(st["hashes"].get<int>() >= 1);
  // Follows the option (0.4.17 always said true, docs/compatibility.md#w30); these tests disable
  // tracking.
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
  agent.start(opts);
  auto disabled = http_get(agent.port(), "/_dinodia/sync-status", {{"Authorization", "Bearer "}});
  REQUIRE(disabled);
  CHECK(disabled->status == 404);
  agent.stop();
  check_no_secrets(agent, platform);
}

TEST_CASE("20 accelerated rotations: clients using the published token never get 401", "[sync]") {
  RotatingHub hub;
  auto& platform = hub.platform;
  auto& agent = hub.agent;
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
  check_no_secrets(agent, platform, tokens_seen);
}

TEST_CASE("a rotated-out token is refused on the keep-alive connection that proved it", "[sync]") {
  // The bridge remembers the token a connection proved (ProvenToken): that memory must not
  // outlive the token's acceptance.
  RotatingHub hub;
  auto& platform = hub.platform;
  auto& agent = hub.agent;
  const auto first = accepted_published_token(platform, agent);
  REQUIRE(first.has_value());
  const auto request = [](const std::string& token) {
    return "GET /api/ HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  };
  dinodia::testing::RawSocket kiosk(agent.port());
  REQUIRE(kiosk.send(request(*first)));
  CHECK(dinodia::testing::status_of(kiosk.read_response(5s)) == 200);
  // Rotated out and past its grace: a new connection is refused once the agent synced.
  bool refused = false;
  for (int i = 0; i < 300 && !refused; ++i) {
    refused = agent.api_status(*first) == 401;
    if (!refused) std::this_thread::sleep_for(50ms);
  }
  REQUIRE(refused);
  REQUIRE(kiosk.send(request(*first)));
  CHECK(dinodia::testing::status_of(kiosk.read_response(5s)) == 401);
  CHECK_FALSE(kiosk.peer_closed());
  // The connection stays usable with the token now published.
  const auto current = accepted_published_token(platform, agent, *first);
  REQUIRE(current.has_value());
  REQUIRE(kiosk.send(request(*current)));
  CHECK(dinodia::testing::status_of(kiosk.read_response(5s)) == 200);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform, {*first, *current});
}

TEST_CASE("a rotated-out token is refused while the kiosk relief serves answers from memory",
          "[sync][relief]") {
  // The relief holds answers for everyone (docs/lan-bridge.md#kiosk-relief); the hub token is
  // still checked per request and per WebSocket session, against the set the platform synced.
  RotatingHub hub;
  auto& agent = hub.agent;
  REQUIRE(dinodia::testing::wait_until(
      [&] { return agent.sync_status(kStatusToken)["kioskRelief"]["eventStreamUp"] == true; },
      10s));
  const auto first = accepted_published_token(hub.platform, agent);
  REQUIRE(first.has_value());
  const auto states = [&](const std::string& token) {
    dinodia::testing::RawSocket client(agent.port());
    client.send("GET /api/states HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + token +
                "\r\n\r\n");
    return dinodia::testing::status_of(client.read_response(5s));
  };
  const auto ws_login = [&](const std::string& token) {
    dinodia::testing::WsClient ws;
    ws.connect(static_cast<std::uint16_t>(agent.port()));
    ws.read_json();
    ws.send_json({{"type", "auth"}, {"access_token", token}});
    return ws.read_json().value("type", "");
  };
  CHECK(states(*first) == 200);
  CHECK(ws_login(*first) == "auth_ok");  // Home Assistant's auth_ok is learnt
  REQUIRE(dinodia::testing::wait_until([&] { return agent.api_status(*first) == 401; }, 15s, 50ms));
  const auto current = accepted_published_token(hub.platform, agent, *first);
  REQUIRE(current.has_value());
  const auto served_held = [&] {
    return agent.sync_status(kStatusToken)["kioskRelief"]["servedHeld"].get<long>();
  };
  const long held_before = served_held();
  CHECK(states(*current) == 200);
  CHECK(states(*current) == 200);  // from memory
  CHECK(states(*first) == 401);
  CHECK(served_held() > held_before);
  const long sessions_before =
      agent.sync_status(kStatusToken)["kioskRelief"]["wsSessionsWithoutLogin"].get<long>();
  CHECK(ws_login(*current) == "auth_ok");  // from memory
  CHECK(ws_login(*first) == "auth_invalid");
  CHECK(dinodia::testing::wait_until(
      [&] {
        return agent.sync_status(kStatusToken)["kioskRelief"]["wsSessionsWithoutLogin"]
                   .get<long>() > sessions_before;
      },
      3s));
  agent.stop();
  check_no_secrets(agent, hub.platform, {*first, *current});
}

TEST_CASE("kill -9 at random points: pairing kept - acknowledged versions always stored",
          "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap,
                               two_listeners({"--rotate-seconds", "1", "--grace-seconds", "1"}));
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(100, 2500);
  const Json options = agent_options(platform.url());
  for (int round = 0; round < 10; ++round) {
    platform.failure("none");
    agent.start(options);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    agent.process().signal(SIGKILL);
    agent.process().wait(5s);

    // Restart while the platform refuses everything: what the agent accepts now is exactly
    // what it had stored when it was killed.
    platform.failure("500");
    agent.start(options);
    Json hub = platform.state()["hub"];
    auto token = platform.published_token();
    INFO("round " << round << " hub " << hub.dump());
    if (round > 0) {
      CHECK(agent.process().count_log("Paired with platform") == 0);  // pairing survived
    }
    if (token) CHECK(agent.api_status(*token) == 200);
    Json st = agent.sync_status(kStatusToken);
    CHECK(st["hasSyncSecret"] == true);
    CHECK(st["agentSeenVersion"].get<std::int64_t>() >=
          hub["lastAckedVersion"].get<std::int64_t>());
    agent.process().signal(SIGKILL);
    agent.process().wait(5s);
  }
  platform.failure("none");
  platform.check_no_duplicate_nonces();
  CHECK(platform.state()["requestCounts"].value("pair@1", 0) == 1);
  check_no_secrets(agent, platform);
}

TEST_CASE("platform 500 / 401 / 404 / malformed / down: last hashes keep serving - recovery",
          "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url()));
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
    const std::size_t failed_before = agent.process().count_log("Platform sync failed");
    REQUIRE(agent.wait_count("Platform sync failed", failed_before + 2, 15s));
    CHECK(agent.api_status(*token) == 200);  // last hashes still in force
    const std::size_t updated_before = agent.process().count_log("Platform sync updated tokens");
    platform.failure("none");
    CHECK(agent.wait_count("Platform sync updated tokens", updated_before + 1, 15s));
  }
  const Json st = agent.sync_status(kStatusToken);
  CHECK(st["origins"][0]["failures"].get<int>() >= 8);
  CHECK(agent.process().count_log("keeping the last accepted hashes") >= 1);  // the 404 case

  // Down: the platform process is gone entirely.
  platform.process().signal(SIGKILL);
  platform.process().wait(5s);
  const std::size_t failed_before = agent.process().count_log("Platform sync failed");
  REQUIRE(agent.wait_count("Platform sync failed", failed_before + 2, 15s));
  CHECK(agent.api_status(*token) == 200);
  // Back-off, not a hot loop: in 3 s at most a handful of attempts.
  const std::size_t before = agent.process().count_log("Platform sync failed");
  std::this_thread::sleep_for(3s);
  CHECK(agent.process().count_log("Platform sync failed") - before <= 10);
  agent.stop();
}

TEST_CASE("platform hangs longer than the timeout: request abandoned - sync recovers",
          "[sync][slow]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url()));
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  auto token = platform.published_token();
  REQUIRE(token);
  platform.failure("hang", 0, 40);
  const std::size_t failed_before = agent.process().count_log("Platform sync failed");
  REQUIRE(agent.wait_count("Platform sync failed", failed_before + 1, 30s));
  CHECK(agent.process().log().find("timeout") != std::string::npos);
  CHECK(agent.api_status(*token) == 200);
  const std::size_t updated_before = agent.process().count_log("Platform sync updated tokens");
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
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners({"--clock-offset", "600"}));
  AgentProcess agent = make_agent(dir, 9);
  agent.start(agent_options(platform.url()));
  REQUIRE(agent.wait_log("Hub clock differs from the platform clock"));
  auto line = agent.process().wait_for_log("Hub clock differs from the platform clock", 1s);
  REQUIRE(line);
  CHECK((line->find("offsetSeconds: 600") != std::string::npos ||
         line->find("offsetSeconds: 599") != std::string::npos ||
         line->find("offsetSeconds: 601") != std::string::npos));
  REQUIRE(agent.wait_log("Paired with platform"));
  REQUIRE(agent.wait_count("Platform sync updated tokens", 3, 15s));
  // The offset is kept: only one correction in the whole run.
  CHECK(agent.process().count_log("Hub clock differs") == 1);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform);
}

TEST_CASE("re-pair after the platform cleared the sync secret", "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  AgentProcess agent = make_agent(dir, 9);
  agent.start(agent_options(platform.url()));
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  platform.control("/_fake/clear-sync-secret", {{"serial", kSerial}});
  REQUIRE(agent.wait_log("Platform says the hub is not paired; pairing again", 15s));
  REQUIRE(agent.wait_count("Paired with platform", 2, 15s));
  const std::size_t updated = agent.process().count_log("Platform sync updated tokens");
  CHECK(agent.wait_count("Platform sync updated tokens", updated + 2, 15s));
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform);
}

TEST_CASE("canary failing with 500: same cycle re-signed to the primary - recorded", "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  platform.failure("500", 2);  // listener 2 = the canary (aws)
  AgentProcess agent = make_agent(dir, 9);
  agent.start(agent_options(platform.url(1), platform.url(2)));
  REQUIRE(agent.wait_log("Platform canary origin failed; falling back to the primary origin"));
  REQUIRE(agent.wait_count("backend: 'vercel'", 2, 15s));
  CHECK(agent.process().count_log("Platform sync failed") == 0);  // the fallback saved every cycle
  Json st = agent.sync_status(kStatusToken);
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
  check_no_secrets(agent, platform);
}

TEST_CASE("an absolute token-state endpoint without a canary still overrides the host", "[sync]") {
  // 0.4.17 resolved platform_token_state_endpoint against the base URL, so an absolute address
  // sent token-state there while pairing stayed on the base; a home configured so keeps
  // syncing (docs/compatibility.md#options). Listener 2 (aws) stands for the other host.
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  AgentProcess agent = make_agent(dir, 9);
  Json options = agent_options(platform.url(1));
  options["platform_token_state_endpoint"] = platform.url(2) + "/api/hub-agent/token-state";
  agent.start(options);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 20s));
  CHECK(agent.process().count_log("backend: 'aws'") >= 2);  // only token-state went there
  CHECK(agent.process().count_log("Platform sync failed") == 0);
  agent.stop();
  Json counts = platform.state()["requestCounts"];
  CHECK(counts.value("pair@1", 0) == 1);
  CHECK(counts.value("pair@2", 0) == 0);
  CHECK(counts.value("token-state@1", 0) == 0);
  CHECK(counts.value("token-state@2", 0) >= 2);
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform);
}

namespace {

// Two platforms with a database each, as a misconfigured AWS origin would be: the primary (Vercel
// behind the Worker, backend header "vercel") and the canary (straight to an origin, no header).
struct CanaryRig {
  TempDir dir;
  TempDir canary_dir;
  FakePlatformProcess primary{dir, kSerial, kBootstrap, {"vercel", false, {}}};
  FakePlatformProcess canary{canary_dir, kSerial, kBootstrap, {"", false, {}}};
  AgentProcess agent = make_agent(dir, 9);
  Json options = agent_options(primary.url(), canary.url());
};

// Whatever the canary answers, each cycle falls back to the primary in the same cycle, signed
// afresh; the stored sync secret is kept (the database and the legacy file), no request ever
// pairs with the canary, and status, sync-status and the log say where each sync went.
void check_canary_failure_falls_back(CanaryRig& rig, const std::string& failure_class,
                                     std::size_t cycles, std::chrono::seconds per_cycle) {
  auto& agent = rig.agent;
  agent.start(rig.options);
  // The first cycle pairs with the primary: the canary is passed over without a sync secret.
  REQUIRE(agent.wait_count("Platform sync updated tokens", 1, 15s));
  const std::string secret = rig.primary.hub()["syncSecret"];
  REQUIRE(agent.wait_count("Platform canary origin failed; falling back to the primary origin",
                           cycles, per_cycle * static_cast<int>(cycles) + 10s));
  // Each of those cycles ended on the primary, with the same secret.
  REQUIRE(agent.wait_count("Platform sync updated tokens", cycles + 1, per_cycle + 10s));
  const Json st = agent.sync_status(kStatusToken);
  agent.stop();
  const std::string log = agent.all_logs();
  INFO(log);

  CHECK(agent.process().count_log("Platform sync failed") == 0);
  CHECK(agent.process().count_log("pairing again") == 0);
  CHECK(agent.process().count_log("Paired with platform") == 1);
  // Nothing was ever sent to the canary's pair route; the primary paired once.
  const Json canary_state = rig.canary.state();
  CHECK(canary_state["arrivals"].value("pair", 0) == 0);
  CHECK(canary_state["arrivals"].value("token-state", 0) >= static_cast<int>(cycles));
  const Json primary_state = rig.primary.state();
  CHECK(primary_state["requestCounts"].value("pair", 0) == 1);
  CHECK(primary_state["hub"]["syncSecret"] == secret);
  // The state kept the secret: the database (sync-status) and the 0.4.17 file alike.
  CHECK(st["hasSyncSecret"] == true);
  const Json legacy =
      Json::parse(dinodia::testing::read_file(rig.dir.file("dinodia_token_state.json")));
  CHECK(legacy["syncSecret"] == secret);

  // sync-status: per origin, where the requests went and how they ended.
  const std::string canary_host = "127.0.0.1:" + std::to_string(rig.canary.port());
  const std::string primary_host = "127.0.0.1:" + std::to_string(rig.primary.port());
  bool canary_seen = false, primary_seen = false;
  for (const auto& o : st["origins"]) {
    if (o["role"] == "canary") {
      canary_seen = true;
      CHECK(o["host"] == canary_host);
      CHECK(o["successes"] == 0);
      CHECK(o["failures"].get<std::size_t>() >= cycles);
      CHECK(o["lastFailure"]["status"] == failure_class);
      CHECK(o["lastFailure"]["operation"] == "token-state");
      CHECK(o["lastFailure"]["latencyMs"].is_number());
      CHECK(o["lastAttempt"]["status"] == failure_class);
      CHECK(o["lastAttempt"]["backend"].is_null());
    }
    if (o["role"] == "primary") {
      primary_seen = true;
      CHECK(o["host"] == primary_host);
      CHECK(o["lastAttempt"]["status"] == "ok");
      CHECK(o["lastAttempt"]["backend"] == "vercel");
      CHECK(o["successes"].get<std::size_t>() >= cycles + 1);
    }
  }
  CHECK(canary_seen);
  CHECK(primary_seen);
  // One line per cycle says where it went.
  auto line = agent.process().wait_for_log("canaryFailure: '" + failure_class + "'", 1s);
  REQUIRE(line);
  CHECK(line->find("Platform sync cycle") != std::string::npos);
  CHECK(line->find("role: 'primary'") != std::string::npos);
  CHECK(line->find("host: '" + primary_host + "'") != std::string::npos);
  CHECK(line->find("outcome: 'ok'") != std::string::npos);
  CHECK(line->find("backend: 'vercel'") != std::string::npos);
  CHECK(line->find("latencyMs: ") != std::string::npos);

  // `status` shows the same per origin.
  auto [code, out] = run_cli(rig.dir, "status", rig.options, "http://127.0.0.1:9", "status.log");
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("role canary, host " + canary_host) != std::string::npos);
  CHECK(out.find("role primary, host " + primary_host) != std::string::npos);
  CHECK(out.find("token-state -> " + failure_class) != std::string::npos);
  CHECK(out.find(secret) == std::string::npos);

  // No nonce twice, on either platform or across them.
  rig.primary.check_no_duplicate_nonces();
  rig.canary.check_no_duplicate_nonces();
  std::set<std::string> nonces;
  std::size_t total = 0;
  for (const Json* s : {&primary_state, &canary_state}) {
    for (const auto& n : (*s)["nonces"]) {
      nonces.insert(n.get<std::string>());
      ++total;
    }
  }
  CHECK(nonces.size() == total);
  std::vector<std::string> secrets{secret};
  if (canary_state["hub"].is_object() && canary_state["hub"]["syncSecret"].is_string()) {
    secrets.push_back(canary_state["hub"]["syncSecret"]);
  }
  check_no_secrets(agent, rig.primary, secrets);
}

}  // namespace

TEST_CASE("canary 5xx: fallback to the primary in the same cycle - secret kept", "[sync][canary]") {
  CanaryRig rig;
  rig.canary.failure("500");
  check_canary_failure_falls_back(rig, "server_error", 2, 5s);
}

TEST_CASE("canary framework 500 without envelope: fallback - secret kept", "[sync][canary]") {
  CanaryRig rig;
  rig.canary.control("/_fake/failure", {{"mode", "framework500"}});
  check_canary_failure_falls_back(rig, "server_error", 2, 5s);
}

TEST_CASE("canary timeout: fallback to the primary in the same cycle - secret kept",
          "[sync][canary][slow]") {
  CanaryRig rig;
  rig.canary.failure("hang", 0, 25);  // past the agent's 15 s per request
  check_canary_failure_falls_back(rig, "timeout", 2, 25s);
}

TEST_CASE("canary connection reset: fallback - secret kept", "[sync][canary]") {
  CanaryRig rig;
  rig.canary.failure("reset");
  check_canary_failure_falls_back(rig, "transport", 2, 5s);
}

TEST_CASE("canary 401 not paired: secret kept - no re-pair with the canary - primary accepts",
          "[sync][canary]") {
  // The canary's own database never saw this hub paired: its token-state answers
  // `Hub not paired yet.` Re-pairing there would replace the secret the primary holds.
  CanaryRig rig;
  check_canary_failure_falls_back(rig, "not_paired", 3, 5s);
  CHECK(rig.canary.hub()["paired"] == false);
}

TEST_CASE("canary 401 bad signature: no re-pair on repeated failures - secret kept",
          "[sync][canary]") {
  // The canary's database paired the hub with another secret. Four cycles: past the 2nd and 4th
  // consecutive bad signature, where the primary's would trigger a re-pair.
  CanaryRig rig;
  rig.canary.control("/_fake/set-sync-secret",
                     {{"serial", kSerial}, {"syncSecret", std::string(48, 'e')}});
  check_canary_failure_falls_back(rig, "bad_signature", 4, 5s);
  CHECK(rig.canary.hub()["syncSecret"] == std::string(48, 'e'));
}

TEST_CASE("canary 404 unknown serial: fallback - secret kept", "[sync][canary]") {
  CanaryRig rig;
  rig.canary.control("/_fake/remove", {{"serial", kSerial}});
  check_canary_failure_falls_back(rig, "unknown_serial", 2, 5s);
}

TEST_CASE("canary malformed body: fallback - secret kept", "[sync][canary]") {
  CanaryRig rig;
  rig.canary.failure("malformed");
  check_canary_failure_falls_back(rig, "malformed_response", 2, 5s);
}

TEST_CASE("not paired and pairing fails: the legacy file forgets the secret with the database",
          "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url()));
  REQUIRE(agent.wait_log("Platform sync updated tokens"));
  const std::string old_secret = platform.hub()["syncSecret"];
  const std::string legacy_path = dir.file("dinodia_token_state.json");
  REQUIRE(Json::parse(dinodia::testing::read_file(legacy_path))["syncSecret"] == old_secret);
  auto token = platform.published_token();
  REQUIRE(token);

  // Re-provisioned on the platform, and pairing is failing for now.
  platform.control("/_fake/failure", {{"mode", "500"}, {"route", "pair"}});
  platform.control("/_fake/clear-sync-secret", {{"serial", kSerial}});
  REQUIRE(agent.wait_log("Platform says the hub is not paired; pairing again", 15s));
  REQUIRE(agent.wait_log("Platform sync failed", 15s));
  const Json legacy = Json::parse(dinodia::testing::read_file(legacy_path));
  CHECK_FALSE(legacy.contains("syncSecret"));  // a rollback to 0.4.17 pairs again
  CHECK(legacy["hubTokenHashes"].size() >= 1);
  CHECK(agent.sync_status(kStatusToken)["hasSyncSecret"] == false);
  CHECK(agent.api_status(*token) == 200);  // the hashes stay in force

  // Pairing works again: the new secret reaches the file.
  platform.failure("none");
  REQUIRE(agent.wait_count("Paired with platform", 2, 20s));
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 15s));
  const std::string new_secret = platform.hub()["syncSecret"];
  CHECK(new_secret != old_secret);
  CHECK(Json::parse(dinodia::testing::read_file(legacy_path))["syncSecret"] == new_secret);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform, {old_secret});
}

TEST_CASE("origin switch and rollback in options keep pairing - hashes and versions", "[sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap,
                               two_listeners({"--rotate-seconds", "2", "--grace-seconds", "1"}));
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url(1)));
  REQUIRE(agent.wait_count("Platform sync updated tokens", 3, 20s));
  agent.stop();
  const std::int64_t acked = platform.state()["hub"]["lastAckedVersion"];

  // Switch to the AWS origin: no pairing again, state carried over.
  agent.start(agent_options(platform.url(2)));
  auto token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);  // before any sync on the new origin
  CHECK(agent.sync_status(kStatusToken)["agentSeenVersion"].get<std::int64_t>() >= acked);
  REQUIRE(agent.wait_count("backend: 'aws'", 3, 20s));
  CHECK(agent.process().count_log("Paired with platform") == 0);
  agent.stop();

  // Roll back to Vercel.
  agent.start(agent_options(platform.url(1)));
  token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);
  REQUIRE(agent.wait_count("backend: 'vercel'", 2, 20s));
  CHECK(agent.process().count_log("Paired with platform") == 0);
  agent.stop();
  Json s = platform.state();
  CHECK(s["requestCounts"].value("pair@1", 0) + s["requestCounts"].value("pair@2", 0) == 1);
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, platform);
}

TEST_CASE("upgrade from the legacy agent imports its file - rollback file kept current", "[sync]") {
  TempDir first;
  FakePlatformProcess platform(first, kSerial, kBootstrap,
                               two_listeners({"--rotate-seconds", "2", "--grace-seconds", "1"}));
  FakeHaProcess ha(first, kSupervisorToken);
  // A legacy agent paired this hub: stand in for it with one run in another data folder, then
  // write the file the legacy agent would have left (legacy key variants, untrimmed values).
  {
    AgentProcess legacy = make_agent(first, ha.port());
    legacy.start(agent_options(platform.url()));
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
  AgentProcess agent = make_agent(data, ha.port());
  agent.start(agent_options(platform.url()));
  CHECK(agent.process().count_log("Imported legacy token state") == 1);
  auto token = platform.published_token();
  REQUIRE(token);
  CHECK(agent.api_status(*token) == 200);
  CHECK(agent.sync_status(kStatusToken)["hasSyncSecret"] == true);
  platform.failure("none");
  REQUIRE(agent.wait_count("Platform sync updated tokens", 4, 30s));
  CHECK(agent.process().count_log("Paired with platform") == 0);  // the imported secret works
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
  check_no_secrets(agent, platform, {*token});
}

TEST_CASE("status and doctor subcommands", "[sync][cli]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners());
  FakeHaProcess ha(dir, kSupervisorToken);
  AgentProcess agent = make_agent(dir, ha.port());
  agent.start(agent_options(platform.url(1), platform.url(2)));
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 15s));
  agent.stop();
  const std::string secret = platform.state()["hub"]["syncSecret"];

  const std::string supervisor_url = ha.url();
  auto cli = [&](const std::string& command, const Json& options, const std::string& log) {
    return run_cli(dir, command, options, supervisor_url, log);
  };

  auto [status_code, status_out] =
      cli("status", agent_options(platform.url(1), platform.url(2)), "status.log");
  INFO(status_out);
  CHECK(status_code == 0);
  CHECK(status_out.find("Paired: yes (serial DIN-GB-00077") != std::string::npos);
  CHECK(status_out.find("Accepted hashes: 1") != std::string::npos);
  CHECK(status_out.find("backend aws") != std::string::npos);
  CHECK(status_out.find("token-state") != std::string::npos);
  CHECK(status_out.find(secret) == std::string::npos);
  CHECK(status_out.find(kBootstrap) == std::string::npos);

  auto [ok_code, ok_out] =
      cli("doctor", agent_options(platform.url(1), platform.url(2)), "doctor1.log");
  INFO(ok_out);
  CHECK(ok_code == 0);
  CHECK(ok_out.find("All checks passed.") != std::string::npos);

  Json wrong_secret = agent_options(platform.url(1));
  wrong_secret["hub_agent_secret"] = "not-the-bootstrap-secret";
  auto [bad_code, bad_out] = cli("doctor", wrong_secret, "doctor2.log");
  INFO(bad_out);
  CHECK(bad_code == 1);
  CHECK(bad_out.find("wrong bootstrap secret") != std::string::npos);
  CHECK(bad_out.find("not-the-bootstrap-secret") == std::string::npos);

  Json wrong_serial = agent_options(platform.url(1));
  wrong_serial["hub_agent_id"] = "DIN-GB-99999";
  auto [serial_code, serial_out] = cli("doctor", wrong_serial, "doctor3.log");
  INFO(serial_out);
  CHECK(serial_code == 1);
  CHECK(serial_out.find("wrong serial") != std::string::npos);

  Json unreachable = agent_options("http://127.0.0.1:" + std::to_string(free_loopback_port()));
  auto [down_code, down_out] = cli("doctor", unreachable, "doctor4.log");
  INFO(down_out);
  CHECK(down_code == 1);
  CHECK(down_out.find("unreachable") != std::string::npos);
}

TEST_CASE("doctor reports a skewed hub clock", "[sync][cli]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap, two_listeners({"--clock-offset", "600"}));
  auto [code, out] =
      run_cli(dir, "doctor", agent_options(platform.url(2)), "http://127.0.0.1:9", "doctor.log");
  INFO(out);
  CHECK(code == 1);
  CHECK((out.find("hub clock is off by 600 s") != std::string::npos ||
         out.find("hub clock is off by 599 s") != std::string::npos ||
         out.find("hub clock is off by 601 s") != std::string::npos));
  CHECK(out.find("fix the hub clock first") != std::string::npos);
}
