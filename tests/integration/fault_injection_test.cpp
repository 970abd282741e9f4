// Fault injection: the real agent between the real fakes while the transport or the
// disk misbehaves. Covered here: Home Assistant (Supervisor) resetting TCP connections before the
// status line and mid-body, Core restarting (Supervisor 502 for REST and WebSocket upgrades),
// the platform resetting connections, and a full disk under the state database (a real small
// tmpfs, so this file needs root). Covered elsewhere and not repeated: the platform hanging,
// 500/401/404/garbage and down (platform_sync_test), HA dying mid-response with a FIN
// (http_relay_test), kill -9 at random points under 1-second rotation (platform_sync_test).
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/ws_client.hpp"

namespace {

using dinodia::testing::AgentProcess;
using dinodia::testing::AgentSetup;
using dinodia::testing::body_of;
using dinodia::testing::content_length_of;
using dinodia::testing::FakeHaProcess;
using dinodia::testing::FakePlatformProcess;
using dinodia::testing::http_get;
using dinodia::testing::RawSocket;
using dinodia::testing::status_of;
using dinodia::testing::TempDir;
using dinodia::testing::wait_until;
using dinodia::testing::WsClient;
using dinodia::testing::WsEvent;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kSerial = "DIN-GB-00123";
constexpr const char* kBootstrap = "bootstrap-secret-fault-4c3b2a";
constexpr const char* kSupervisorToken = "sup-token-fault-8d7e6f";
constexpr const char* kStatusToken = "sync-status-token-fault-1a2b";
constexpr const char* kHubToken = "local-hub-token-fault-5e6f7a";

// The faults are injected into requests that reach Home Assistant. With the kiosk relief on, a
// repeated GET inside its window may be answered from memory and never meet the fault (that case,
// and faults while the relief is on, are kiosk_relief_test's), so these tests relay every request.
Json lan_options() {
  Json options = dinodia::testing::lan_agent_options(kHubToken);
  options["kiosk_relief"] = false;
  return options;
}

Json sync_options(const std::string& base_url) {
  return dinodia::testing::sync_agent_options(kSerial, kBootstrap, kStatusToken, base_url);
}

// Data in `data_dir`; options.json and the agent's logs in `files_dir`.
AgentSetup agent_setup(const std::string& data_dir, const std::string& files_dir,
                       const FakeHaProcess& ha) {
  return {data_dir, files_dir, ha.url(), kSupervisorToken, dinodia::testing::fast_sync_env(), 40s};
}

long faults_injected(const FakeHaProcess& ha) {
  return ha.stats().at("faults_injected").get<long>();
}

// No secret in play may appear in any agent log of this test.
void check_no_secrets(const AgentProcess& agent, std::vector<std::string> secrets) {
  secrets.insert(secrets.end(), {kBootstrap, kSupervisorToken, kStatusToken, kHubToken});
  agent.check_logs_have_no_secrets(secrets);
}

std::string request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kHubToken +
         "\r\n\r\n";
}

// A real, small file system (tmpfs) mounted for the test, so the disk really fills up.
class SmallDisk {
 public:
  SmallDisk(std::string path, const std::string& size) : path_(std::move(path)) {
    ::mkdir(path_.c_str(), 0700);
    const std::string options = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      const int err = errno;
      FAIL("cannot mount a " << size << " tmpfs on " << path_ << ": " << std::strerror(err)
                             << ". The full-disk tests need root (CAP_SYS_ADMIN): run them as "
                                "root or in a privileged container.");
    }
    mounted_ = true;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Writes a filler file until the file system refuses; returns the bytes written.
  std::size_t fill() {
    const int fd = ::open(file("filler").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    REQUIRE(fd >= 0);
    std::size_t total = 0;
    const std::string chunk(64 * 1024, 'x');
    for (std::size_t size : {chunk.size(), std::size_t{4096}, std::size_t{1}}) {
      for (;;) {
        const ssize_t n = ::write(fd, chunk.data(), size);
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
      }
    }
    ::close(fd);
    return total;
  }
  void free_space() { ::unlink(file("filler").c_str()); }
  std::uint64_t available() const {
    struct statvfs st {};
    ::statvfs(path_.c_str(), &st);
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

std::vector<std::string> leftover_temp_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename();
    if (name.find(".tmp-") != std::string::npos) out.push_back(name);
  }
  return out;
}

}  // namespace

TEST_CASE("Supervisor resets the connection before the status line: 502 - next request served",
          "[fault]") {
  TempDir dir;
  FakeHaProcess ha(dir, kSupervisorToken, 300);
  AgentProcess agent(agent_setup(dir.path(), dir.path(), ha));
  agent.start(lan_options());
  RawSocket client(agent.port());
  client.send(request("/api/states"));  // warms the upstream pool: the reset hits a pooled conn
  REQUIRE(status_of(client.read_response(10s)) == 200);

  ha.control("/_fake/fault?mode=reset_before_status&count=-1&path=/core/api/states");
  auto t0 = Clock::now();
  client.send(request("/api/states"));
  const std::string reset_reply = client.read_response(10s);
  INFO(reset_reply.substr(0, 300));
  CHECK(Clock::now() - t0 < 3s);
  CHECK(status_of(reset_reply) == 502);
  CHECK(body_of(reset_reply) == R"({"error":"Upstream error."})");
  CHECK(faults_injected(ha) >= 1);
  // The 502 is a complete answer: the same keep-alive connection goes on, at once.
  CHECK_FALSE(client.peer_closed());
  t0 = Clock::now();
  client.send(request("/api/"));
  CHECK(status_of(client.read_response(5s)) == 200);
  CHECK(Clock::now() - t0 < 1s);

  // One single reset (as a stale pooled connection would see): the client gets an answer,
  // either a retry's 200 or a 502, never a hang or a dropped connection.
  ha.control("/_fake/fault?mode=reset_before_status&count=1&path=/core/api/states");
  client.send(request("/api/states"));
  const int once = status_of(client.read_response(10s));
  INFO("a single reset was answered with " << once);
  CHECK((once == 200 || once == 502));
  ha.control("/_fake/fault?mode=none");
  client.send(request("/api/states"));
  const std::string after = client.read_response(10s);
  CHECK(status_of(after) == 200);
  CHECK(Json::parse(body_of(after)).size() == 300);
  CHECK(agent.process().running());
  check_no_secrets(agent, {});
}

TEST_CASE("Supervisor resets the connection mid-body: stream cut short - next request served",
          "[fault]") {
  TempDir dir;
  FakeHaProcess ha(dir, kSupervisorToken, 300);
  AgentProcess agent(agent_setup(dir.path(), dir.path(), ha));
  agent.start(lan_options());
  ha.control("/_fake/fault?mode=reset_mid_body&count=1&path=/core/api/states");
  RawSocket client(agent.port());
  client.send(request("/api/states"));
  const std::string got = client.read_until_close(10s);
  INFO(got.substr(0, 300));
  CHECK(client.peer_closed());
  CHECK(faults_injected(ha) == 1);
  const int status = status_of(got);
  if (status == 200) {
    // Headers were already relayed: the only honest signal left is a short body and a close.
    const long declared = content_length_of(got);
    if (declared >= 0) CHECK(static_cast<long>(body_of(got).size()) < declared);
    CHECK_FALSE(Json::accept(body_of(got)));
  } else {
    CHECK(status == 502);
  }
  const auto t0 = Clock::now();
  auto next = http_get(agent.port(), "/api/states",
                       {{"Authorization", std::string("Bearer ") + kHubToken}});
  REQUIRE(next);
  CHECK(next->status == 200);
  CHECK(Json::parse(next->body).size() == 300);
  CHECK(Clock::now() - t0 < 1s);
  CHECK(agent.process().running());
  check_no_secrets(agent, {});
}

TEST_CASE(
    "Home Assistant restarting: 502 while Core starts, 200 within seconds after - "
    "WebSocket closed cleanly and a new one works",
    "[fault]") {
  TempDir dir;
  FakeHaProcess ha(dir, kSupervisorToken, 50);
  AgentProcess agent(agent_setup(dir.path(), dir.path(), ha));
  agent.start(lan_options());
  auto ws_session = [&](WsClient& ws) {
    ws.connect(static_cast<std::uint16_t>(agent.port()));
    REQUIRE(ws.read_json()["type"] == "auth_required");
    ws.send_json({{"type", "auth"}, {"access_token", kHubToken}});
    REQUIRE(ws.read_json()["type"] == "auth_ok");
    ws.send_json({{"id", 1}, {"type", "config/entity_registry/list"}});
    REQUIRE(ws.read_result(1)["success"] == true);
  };
  WsClient open_during_restart;
  ws_session(open_during_restart);

  // A kiosk polling through the whole restart: every request is answered, 200 or 502.
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, bad_gateway{0}, other{0}, no_answer{0};
  std::thread kiosk([&] {
    httplib::Client c("127.0.0.1", agent.port());
    c.set_keep_alive(true);
    c.set_connection_timeout(2);
    c.set_read_timeout(5);
    while (!done) {
      auto r = c.Get("/api/states", {{"Authorization", std::string("Bearer ") + kHubToken}});
      if (!r) {
        ++no_answer;
      } else if (r->status == 200) {
        ++ok;
      } else if (r->status == 502) {
        ++bad_gateway;
      } else {
        ++other;
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(1s);

  // Core goes down: the Supervisor answers 502 for REST and refuses WebSocket upgrades.
  ha.control("/_fake/fault?mode=ws_502&count=-1");
  ha.control("/_fake/core?running=0");
  WsEvent dropped = open_during_restart.read(5s);
  INFO(dropped.describe());
  CHECK(dropped.ended());
  if (dropped.is_closed()) CHECK(dropped.close_code == 1011);
  auto during = http_get(agent.port(), "/api/states",
                         {{"Authorization", std::string("Bearer ") + kHubToken}});
  REQUIRE(during);
  CHECK(during->status == 502);
  CHECK(during->body == "502: Bad Gateway");
  {
    // A session started while Core is down ends promptly instead of hanging.
    WsClient early;
    const auto t0 = Clock::now();
    bool ended = false;
    try {
      early.connect(static_cast<std::uint16_t>(agent.port()));
      for (int i = 0; i < 3 && !ended; ++i) {
        WsEvent e = early.read(5s);
        if (e.is_message()) {
          // auth_required may come first; answer it so the agent has every reason to proceed.
          if (Json::parse(e.data).value("type", "") == "auth_required") {
            early.send_json({{"type", "auth"}, {"access_token", kHubToken}});
          }
          continue;
        }
        INFO(e.describe());
        ended = e.ended();
        if (e.is_closed()) CHECK(e.close_code == 1011);
        break;
      }
    } catch (const std::exception& e) {
      ended = true;  // the upgrade itself refused
    }
    CHECK(ended);
    CHECK(Clock::now() - t0 < 6s);
  }
  std::this_thread::sleep_for(2s);

  // Core is back.
  ha.control("/_fake/core?running=1");
  ha.control("/_fake/fault?mode=none");
  const auto back = Clock::now();
  const bool served = wait_until(
      [&] {
        auto r = http_get(agent.port(), "/api/states",
                          {{"Authorization", std::string("Bearer ") + kHubToken}});
        return r && r->status == 200;
      },
      5s, 100ms);
  CHECK(served);
  CHECK(Clock::now() - back < 2s);
  WsClient afterwards;
  ws_session(afterwards);
  afterwards.close();
  std::this_thread::sleep_for(500ms);
  done = true;
  kiosk.join();
  INFO("kiosk: ok " << ok << " 502 " << bad_gateway << " other " << other << " no answer "
                    << no_answer);
  CHECK(ok >= 3);
  CHECK(bad_gateway >= 3);
  CHECK(other == 0);
  CHECK(no_answer == 0);
  CHECK(faults_injected(ha) >= 1);  // the refused upgrade really happened
  check_no_secrets(agent, {});
}

TEST_CASE("platform resetting connections: sync fails, retries and recovers - LAN unaffected",
          "[fault][sync]") {
  TempDir dir;
  FakePlatformProcess platform(dir, kSerial, kBootstrap);
  FakeHaProcess ha(dir, kSupervisorToken, 50);
  AgentProcess agent(agent_setup(dir.path(), dir.path(), ha));
  const Json options = sync_options(platform.url());
  agent.start(options);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 1, 20s));
  std::optional<std::string> token;
  REQUIRE(wait_until([&] { return (token = platform.published_token()).has_value(); }, 10s));
  REQUIRE(agent.api_status(*token) == 200);

  platform.failure("reset");
  const std::size_t failed_before = agent.process().count_log("Platform sync failed");
  REQUIRE(agent.wait_count("Platform sync failed", failed_before + 2, 20s));
  INFO(agent.process().log());
  // A transport failure (no HTTP status at all), not one of the platform's error answers.
  CHECK(agent.process().count_log("Platform request failed") >= 2);
  CHECK(agent.api_status(*token) == 200);  // the last hashes keep serving
  const std::size_t updated_before = agent.process().count_log("Platform sync updated tokens");
  platform.failure("none");
  const auto t0 = Clock::now();
  CHECK(agent.wait_count("Platform sync updated tokens", updated_before + 1, 15s));
  CHECK(Clock::now() - t0 < 10s);
  const Json st = agent.sync_status(kStatusToken);
  CHECK(st["origins"][0]["failures"].get<int>() >= 2);
  agent.stop();
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, {*token, platform.hub()["syncSecret"].get<std::string>()});
}

TEST_CASE(
    "full disk under the database: serving goes on with the last hashes - nothing acked "
    "that was not stored - recovery once space is back",
    "[fault][disk]") {
  TempDir dir;
  SmallDisk disk(dir.file("data"), "4m");
  FakePlatformProcess platform(
      dir, kSerial, kBootstrap,
      {"vercel", false, {"--rotate-seconds", "3", "--grace-seconds", "60"}});
  FakeHaProcess ha(dir, kSupervisorToken, 50);
  AgentProcess agent(agent_setup(disk.path(), dir.path(), ha));
  const Json options = sync_options(platform.url());
  agent.start(options);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 20s));
  // At least one rotation stored before the disk fills.
  REQUIRE(wait_until([&] { return platform.hub()["publishedVersion"].get<int>() >= 2; }, 20s));
  const std::string secret = platform.hub()["syncSecret"];

  const std::size_t filled = disk.fill();
  INFO("filler bytes " << filled << ", available now " << disk.available());
  REQUIRE(disk.available() < 4096);
  REQUIRE(agent.wait_count("Could not persist token state", 1, 15s));
  auto error_line = agent.process().wait_for_log("Could not persist token state", 1s);
  REQUIRE(error_line);
  CHECK(error_line->find("ERROR") != std::string::npos);
  CHECK(error_line->find("full") != std::string::npos);  // SQLite: "database or disk is full"

  // What the agent has stored now is what it may acknowledge, and no more.
  const std::int64_t stored =
      agent.sync_status(kStatusToken)["agentSeenVersion"].get<std::int64_t>();
  const auto token = platform.published_token();
  REQUIRE(token);
  // A rotation comes due while the disk stays full: the new version stays pending.
  REQUIRE(wait_until([&] { return platform.hub()["latestVersion"].get<std::int64_t>() > stored; },
                     15s));
  const std::size_t errors_at = agent.process().count_log("Could not persist token state");
  REQUIRE(agent.wait_count("Could not persist token state", errors_at + 3, 15s));
  Json hub = platform.hub();
  INFO("stored " << stored << " hub " << hub.dump());
  CHECK(hub["lastAckedVersion"].get<std::int64_t>() <= stored);
  CHECK(hub["publishedVersion"].get<std::int64_t>() <= stored);
  CHECK(agent.sync_status(kStatusToken)["agentSeenVersion"].get<std::int64_t>() == stored);
  CHECK(platform.published_token() == token);
  for (int i = 0; i < 5; ++i) CHECK(agent.api_status(*token) == 200);
  // The rollback file was not truncated by the failed rewrite.
  Json legacy = Json::parse(dinodia::testing::read_file(disk.file("dinodia_token_state.json")));
  CHECK(legacy["syncSecret"] == secret);
  CHECK(leftover_temp_files(disk.path()).empty());

  // Space is back: the next cycle persists, acknowledges and the platform publishes.
  disk.free_space();
  const std::size_t updated_before = agent.process().count_log("Platform sync updated tokens");
  CHECK(agent.wait_count("Platform sync updated tokens", updated_before + 1, 15s));
  CHECK(wait_until([&] { return platform.hub()["publishedVersion"].get<std::int64_t>() > stored; },
                   15s));
  std::optional<std::string> fresh;
  REQUIRE(wait_until(
      [&] { return (fresh = platform.published_token()).has_value() && *fresh != *token; }, 15s));
  CHECK(wait_until([&] { return agent.api_status(*fresh) == 200; }, 5s));
  CHECK(agent.api_status(*token) == 200);  // in grace
  CHECK(agent.process().count_log("Paired with platform") == 1);
  agent.stop();

  // Nothing stored was lost: a restart with the platform refusing everything accepts the
  // current token from the database alone, and the rollback file names it.
  platform.failure("500");
  agent.start(options);
  CHECK(agent.api_status(*fresh) == 200);
  CHECK(agent.process().count_log("Paired with platform") == 0);
  legacy = Json::parse(dinodia::testing::read_file(disk.file("dinodia_token_state.json")));
  CHECK(legacy["syncSecret"] == secret);
  bool listed = false;
  for (const auto& h : legacy["hubTokenHashes"]) listed |= h == dinodia::crypto::sha256_hex(*fresh);
  CHECK(listed);
  agent.stop();
  platform.failure("none");
  CHECK(platform.state()["requestCounts"].value("pair@1", 0) == 1);
  platform.check_no_duplicate_nonces();
  check_no_secrets(agent, {secret, *token, *fresh});
}

TEST_CASE("starting with a full disk: a clear error and the stored state intact", "[fault][disk]") {
  TempDir dir;
  SmallDisk disk(dir.file("data"), "4m");
  FakePlatformProcess platform(dir, kSerial, kBootstrap);
  FakeHaProcess ha(dir, kSupervisorToken, 50);
  AgentProcess agent(agent_setup(disk.path(), dir.path(), ha));
  const Json options = sync_options(platform.url());
  agent.start(options);
  REQUIRE(agent.wait_count("Platform sync updated tokens", 2, 20s));
  std::optional<std::string> token;
  REQUIRE(wait_until([&] { return (token = platform.published_token()).has_value(); }, 10s));
  agent.stop();
  const std::string secret = platform.hub()["syncSecret"];

  disk.fill();
  REQUIRE(disk.available() < 4096);
  agent.launch(options.dump());
  // Either it serves from what is stored (reading needs no space), or it stops with one clear
  // error. Whatever it does, it must decide within seconds.
  const bool listening = agent.process().wait_for_log("INFO Listening", 30s).has_value();
  const std::string log = agent.process().log();
  INFO(log);
  if (listening) {
    agent.wait_listening();
    CHECK(agent.api_status(*token) == 200);
    CHECK(agent.process().count_log("Paired with platform") == 0);
    agent.stop();
  } else {
    const auto code = agent.process().wait(10s);
    REQUIRE(code.has_value());
    CHECK(*code == 1);
    CHECK(agent.process().count_log("ERROR") == 1);
    CHECK(log.find("Could not open the agent state") != std::string::npos);
    CHECK(log.find("no space left") != std::string::npos);  // the cause, not "disk I/O error"
  }
  // No half-written leftovers: only the database (and its WAL files) and the rollback file.
  CHECK(leftover_temp_files(disk.path()).empty());
  CHECK(log.find("Fatal") == std::string::npos);
  CHECK(log.find("terminate") == std::string::npos);

  // Space back: the stored pairing and hashes are all there.
  disk.free_space();
  platform.failure("500");
  agent.start(options);
  CHECK(agent.api_status(*token) == 200);
  CHECK(agent.sync_status(kStatusToken)["hasSyncSecret"] == true);
  agent.stop();
  CHECK(platform.state()["requestCounts"].value("pair@1", 0) == 1);
  check_no_secrets(agent, {secret, *token});
}
