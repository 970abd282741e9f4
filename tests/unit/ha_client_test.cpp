// ha_client/: the reconnect back-off (base, jitter, cap), the credential order per
// ws_auth_mode and its rotation on auth_invalid (ha_bridge/ws_credentials.hpp), and the clients
// themselves (HaConnection, ws_command_once, ws_commands_once) against fake_ha over a real
// socket: a rejected credential is followed by the next one, a Core that answers 502 is waited
// for, a connection with no valid credential keeps backing off without ever becoming ready, and
// several commands on one connection each get Home Assistant's own result; a stop releases
// what pending requests hold, and the kiosk relief's stream is freed even when its loop stops
// before it does (docs/architecture.md#shutdown).
#include <httplib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "agent/environment.hpp"
#include "agent/options.hpp"
#include "agent/relief_events.hpp"
#include "agent/telemetry_service.hpp"
#include "ha_bridge/relief_signals.hpp"
#include "ha_bridge/ws_credentials.hpp"
#include "ha_client/ha_client.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::ha_bridge;
using namespace dinodia::ha_client;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("reconnect delay: base + jitter + growing extra, capped", "[ha_client]") {
  const ReconnectPolicy legacy;  // 2,000 + random(0..2,999) + min(30,000, n × 2,000) ms
  CHECK(reconnect_delay(legacy, 1, 0) == 2000ms);
  CHECK(reconnect_delay(legacy, 1, 2999) == 4999ms);
  CHECK(reconnect_delay(legacy, 2, 0) == 4000ms);
  CHECK(reconnect_delay(legacy, 3, 1234) == 7234ms);
  CHECK(reconnect_delay(legacy, 15, 0) == 30000ms);
  CHECK(reconnect_delay(legacy, 16, 0) == 32000ms);  // extra reaches its cap at 30 s ...
  CHECK(reconnect_delay(legacy, 17, 0) == 32000ms);  // ... and stays there
  CHECK(reconnect_delay(legacy, 17, 2999) == 34999ms);
  CHECK(reconnect_delay(legacy, std::int64_t{1} << 62, 2999) == 34999ms);  // no overflow
  // Out-of-range inputs are clamped, never produce a delay outside [base, base+jitter+cap).
  CHECK(reconnect_delay(legacy, 0, 0) == 2000ms);
  CHECK(reconnect_delay(legacy, -7, 0) == 2000ms);
  CHECK(reconnect_delay(legacy, 1, 3000) == 4999ms);
  CHECK(reconnect_delay(legacy, 1, -1) == 2000ms);
  const ReconnectPolicy no_jitter{100ms, 0ms, 50ms, 120ms};
  CHECK(reconnect_delay(no_jitter, 1, 999) == 100ms);
  CHECK(reconnect_delay(no_jitter, 3, 999) == 200ms);
  CHECK(reconnect_delay(no_jitter, 4, 999) == 220ms);
  const ReconnectPolicy no_step{100ms, 10ms, 0ms, 120ms};
  CHECK(reconnect_delay(no_step, 1000, 5) == 105ms);
}

TEST_CASE("credential order per ws_auth_mode and rotation on auth_invalid", "[ha_client]") {
  dinodia::agent::Options o;
  o.ha_access_token = "ha-long-lived";
  dinodia::agent::Environment env;
  env.supervisor_token = "sup-token";
  env.supervisor_url = "http://127.0.0.1:8123";

  SECTION("supervisor: only SUPERVISOR_TOKEN") {
    o.ws_auth_mode = "supervisor";
    const auto c = dinodia::agent::ha_client_config(o, env);
    CHECK(c.ws_tokens == std::vector<std::string>{"sup-token"});
    CHECK(c.supervisor_token == "sup-token");
    CHECK(credential_for_auth(0, 1) == 0u);
    CHECK(credential_after_rejection(0, 1) == 0u);  // the only one again, after the back-off
    CHECK_FALSE(untried_credential_after_rejection(0, 1));
  }
  SECTION("ha: only ha_access_token, never the Supervisor token") {
    o.ws_auth_mode = "ha";
    const auto c = dinodia::agent::ha_client_config(o, env);
    CHECK(c.ws_tokens == std::vector<std::string>{"ha-long-lived"});
    CHECK(c.supervisor_token == "sup-token");  // REST still uses it (docs/compatibility.md#options)
  }
  SECTION("auto: SUPERVISOR_TOKEN first, then ha_access_token, then back to the first") {
    o.ws_auth_mode = "auto";
    const auto c = dinodia::agent::ha_client_config(o, env);
    REQUIRE(c.ws_tokens == std::vector<std::string>{"sup-token", "ha-long-lived"});
    const std::size_t n = c.ws_tokens.size();
    std::size_t i = *credential_for_auth(0, n);
    CHECK(c.ws_tokens[i] == "sup-token");
    i = credential_after_rejection(i, n);
    CHECK(c.ws_tokens[i] == "ha-long-lived");
    i = credential_after_rejection(i, n);
    CHECK(c.ws_tokens[i] == "sup-token");  // not stuck past the end (docs/compatibility.md#w31)
    // One-shot commands try each credential once.
    CHECK(untried_credential_after_rejection(0, n) == 1u);
    CHECK_FALSE(untried_credential_after_rejection(1, n));
  }
  SECTION("auto without SUPERVISOR_TOKEN: the empty entry is removed") {
    o.ws_auth_mode = "auto";
    env.supervisor_token.clear();
    const auto c = dinodia::agent::ha_client_config(o, env);
    CHECK(c.ws_tokens == std::vector<std::string>{"ha-long-lived"});
  }
  SECTION("no credential at all") {
    o.ws_auth_mode = "ha";
    o.ha_access_token.clear();
    const auto c = dinodia::agent::ha_client_config(o, env);
    CHECK(c.ws_tokens.empty());
    CHECK_FALSE(credential_for_auth(0, 0));
    CHECK_FALSE(untried_credential_after_rejection(0, 0));
  }
  CHECK(credential_for_auth(5, 2) == 0u);  // an index left over from a longer list
}

namespace {

const std::string kSupervisorToken = "ha-client-test-supervisor-7d1f";

// fake_ha plus an io_context running on its own thread.
struct Rig {
  dinodia::testing::TempDir dir;
  std::unique_ptr<dinodia::testing::Process> fake;
  int port = 0;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;

  Rig() {
    fake = std::make_unique<dinodia::testing::Process>(
        std::vector<std::string>{dinodia::testing::fake_ha_binary(), "--port", "0", "--token",
                                 kSupervisorToken, "--entities", "3"},
        std::map<std::string, std::string>{}, dir.file("fake_ha.log"));
    auto line = fake->wait_for_log("LISTENING");
    REQUIRE(line);
    port = dinodia::testing::port_from_line(*line);
    thread = std::thread([this] { io.run(); });
  }
  ~Rig() {
    work.reset();
    io.stop();
    thread.join();
  }

  HaClientConfig config(std::vector<std::string> tokens) const {
    HaClientConfig c;
    c.upstream = parse_upstream_url("http://127.0.0.1:" + std::to_string(port));
    c.supervisor_token = kSupervisorToken;
    c.ws_tokens = std::move(tokens);
    c.request_timeout = 5000ms;
    c.connect_timeout = 2000ms;
    c.reconnect = ReconnectPolicy{20ms, 10ms, 20ms, 100ms};
    return c;
  }

  json stats() {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/_fake/stats");
    REQUIRE(r);
    return json::parse(r->body);
  }
  // Core stopped: open sockets are dropped and the Supervisor answers a WebSocket upgrade with
  // 502 (fake_ha's ws_502 fault) until Core runs again.
  void core(bool running) {
    httplib::Client c("127.0.0.1", port);
    REQUIRE(c.Get(running ? "/_fake/core?running=1" : "/_fake/core?running=0"));
    auto r = c.Post(running ? "/_fake/fault?mode=none" : "/_fake/fault?mode=ws_502&count=-1", "",
                    "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
};

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::pair<std::string, json> one_shot(Rig& rig, std::vector<std::string> tokens) {
  std::promise<std::pair<std::string, json>> p;
  auto f = p.get_future();
  ws_command_once(rig.io, rig.config(std::move(tokens)), "config/label_registry/list",
                  json::object(), 5000ms, [&p](std::string e, json v) {
                    p.set_value({std::move(e), std::move(v)});
                  });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

std::pair<std::string, json> request(HaConnection& conn, const std::string& type) {
  std::promise<std::pair<std::string, json>> p;
  auto f = p.get_future();
  conn.request(type, json::object(), [&p](std::string e, json v) {
    p.set_value({std::move(e), std::move(v)});
  });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("tracker connection: a rejected credential is followed by the next one",
          "[ha_client][socket]") {
  Rig rig;
  auto conn = HaConnection::create(rig.io, rig.config({"rejected-token", kSupervisorToken}), {});
  CHECK(request(*conn, "config/label_registry/list").first == "HA WS not connected");
  conn->start();
  REQUIRE(eventually([&] { return conn->ready(); }, 10s));
  CHECK(conn->ready_count() == 1);
  // One connection rejected, the second authenticated.
  CHECK(rig.stats()["ws_connections_total"] == 2);
  auto [error, labels] = request(*conn, "config/label_registry/list");
  CHECK(error.empty());
  CHECK(labels.is_array());
  auto [bad, nothing] = request(*conn, "no/such_command");
  CHECK_FALSE(bad.empty());
  conn->stop();
  CHECK(request(*conn, "config/label_registry/list").first == "HA WS not connected");
}

TEST_CASE("tracker connection: no valid credential keeps backing off, never ready",
          "[ha_client][socket]") {
  Rig rig;
  auto conn = HaConnection::create(rig.io, rig.config({"wrong-1", "wrong-2"}), {});
  conn->start();
  // 20-30 ms base + up to 100 ms extra: several attempts within two seconds, each rejected.
  REQUIRE(eventually([&] { return rig.stats()["ws_connections_total"].get<int>() >= 5; }, 5s));
  CHECK_FALSE(conn->ready());
  CHECK(conn->ready_count() == 0);
  conn->stop();
  std::this_thread::sleep_for(300ms);
  const int after_stop = rig.stats()["ws_connections_total"].get<int>();
  std::this_thread::sleep_for(500ms);
  CHECK(rig.stats()["ws_connections_total"].get<int>() == after_stop);  // stop() ends retrying
}

TEST_CASE("tracker connection: waits for Core (502) and reconnects after it restarts",
          "[ha_client][socket]") {
  Rig rig;
  rig.core(false);
  std::atomic<int> ready_calls{0};
  HaConnection::Handlers handlers;
  handlers.on_ready = [&] { ++ready_calls; };
  auto conn = HaConnection::create(rig.io, rig.config({kSupervisorToken}), handlers);
  conn->start();
  // Declined upgrades are retried with the back-off, never reported ready.
  REQUIRE(eventually([&] { return rig.stats()["faults_injected"].get<int>() >= 3; }, 5s));
  CHECK_FALSE(conn->ready());
  CHECK(ready_calls == 0);
  rig.core(true);
  REQUIRE(eventually([&] { return conn->ready(); }, 10s));
  CHECK(ready_calls == 1);
  rig.core(false);  // drops the open socket
  REQUIRE(eventually([&] { return !conn->ready(); }, 10s));
  rig.core(true);
  REQUIRE(eventually([&] { return conn->ready(); }, 10s));
  CHECK(ready_calls == 2);
  CHECK(conn->ready_count() == 2);
  conn->stop();
}

TEST_CASE("one-shot command: credential rotation and its errors", "[ha_client][socket]") {
  Rig rig;
  auto [ok_error, labels] = one_shot(rig, {"rejected-token", kSupervisorToken});
  CHECK(ok_error.empty());
  CHECK(labels.is_array());
  CHECK(one_shot(rig, {"wrong-1", "wrong-2"}).first == "ha_ws_auth_invalid");
  CHECK(one_shot(rig, {}).first == "ha_ws_auth_missing");
  rig.core(false);
  CHECK(one_shot(rig, {kSupervisorToken}).first == "Unexpected server response: 502");
}

TEST_CASE("several commands on one connection: each with Home Assistant's own result",
          "[ha_client][socket]") {
  Rig rig;
  auto many = [&rig](std::vector<std::string> tokens, std::vector<json> commands) {
    std::promise<std::pair<std::string, std::vector<WsResult>>> p;
    auto f = p.get_future();
    ws_commands_once(rig.io, rig.config(std::move(tokens)), std::move(commands), 5000ms,
                     [&p](std::string e, std::vector<WsResult> r) {
                       p.set_value({std::move(e), std::move(r)});
                     });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  };
  const int connections = rig.stats()["ws_connections_total"].get<int>();
  // After a rejected credential, the commands go out on the next credential's connection.
  auto [error, results] =
      many({"rejected-token", kSupervisorToken},
           {json{{"type", "config/label_registry/list"}}, json{{"type", "no/such_command"}},
            json{{"type", "config/entity_registry/remove"}, {"entity_id", "light.nowhere"}}});
  CHECK(error.empty());
  CHECK(rig.stats()["ws_connections_total"].get<int>() == connections + 2);
  REQUIRE(results.size() == 3);
  CHECK(results[0].success);
  CHECK(results[0].result.is_array());
  CHECK_FALSE(results[1].success);
  CHECK(results[1].code == "unknown_command");
  CHECK(results[1].message == "Unknown command.");
  CHECK_FALSE(results[2].success);
  CHECK(results[2].code == "not_found");
  CHECK(results[2].message == "Entity not found");
  // No command: no connection at all.
  auto no_commands = many({kSupervisorToken}, {});
  CHECK(no_commands.first.empty());
  CHECK(no_commands.second.empty());
  CHECK(rig.stats()["ws_connections_total"].get<int>() == connections + 2);
  auto missing = many({}, {json{{"type", "get_states"}}});
  CHECK(missing.first == "ha_ws_auth_missing");
  CHECK(missing.second.empty());
}

TEST_CASE("stop_and_wait: pending requests are answered and released before it returns",
          "[ha_client][socket]") {
  Rig rig;
  auto conn = HaConnection::create(rig.io, rig.config({kSupervisorToken}), {});
  conn->start();
  REQUIRE(eventually([&] { return conn->ready(); }, 10s));
  auto held = std::make_shared<int>(0);  // what a pending callback holds, as an owner would
  const std::weak_ptr<int> watch = held;
  std::string error;
  conn->request("fake/slow", json{{"delay_ms", 5000}},
                [held, &error](const std::string& e, const json&) { error = e; });
  held.reset();
  // The request is queued on the connection's strand before the stop, so it is pending then.
  CHECK(conn->stop_and_wait(5s));
  CHECK(error == "HA WS stopped");
  CHECK(watch.expired());
  CHECK_FALSE(conn->ready());
}

TEST_CASE("kiosk relief stream: nothing outlives the loop, even when the loop stops first",
          "[ha_client][socket]") {
  // The agent's shutdown stops the relief stream and then the bridge's loop. When the loop
  // stopped before the stream's stop ran, the subscriptions still waiting for Home Assistant
  // held the stream, which holds their connection: LeakSanitizer found that cycle at exit.
  Rig rig;
  {
    httplib::Client c("127.0.0.1", rig.port);
    auto r = c.Post("/_fake/set", R"({"subscribe_delay_ms": 10000})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  auto io = std::make_unique<boost::asio::io_context>();
  auto work =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io->get_executor());
  std::thread loop([&io] { io->run(); });
  dinodia::ha_bridge::ReliefSignals signals;
  auto stream =
      dinodia::agent::make_relief_events(*io, rig.config({kSupervisorToken}), signals, nullptr);
  stream->start();
  auto subscribes = [&rig] {
    const json by_type = rig.stats()["counts"]["ws_commands_by_type"];
    return by_type.value("subscribe_events", 0L);
  };
  REQUIRE(eventually([&] { return subscribes() >= 7; }, 10s));
  CHECK_FALSE(ReliefSignals::stream_is_up(signals.now().stream));  // none confirmed yet

  work.reset();
  io->stop();
  loop.join();
  stream->stop();  // its stop cannot run on a stopped loop: it waits a second and returns
  const std::weak_ptr<dinodia::agent::ReliefEvents> watch = stream;
  stream.reset();
  io.reset();  // destroys whatever the loop still held
  CHECK(watch.expired());
}
