// The LAN bridge's timing behaviours and Home Assistant's own JavaScript client, end to end: the
// real agent binary in front of fake_ha ("pings", "keep-alive to the clients", "works
// with a client that sends auth before it sees auth_required").
//
// The bridge's timeouts (65 s keep-alive idle, 30 s ping interval, 10 s header and auth) are
// shortened through DINODIA_BRIDGE_TIMEOUTS, a test-only variable, so these tests run in seconds.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/ws_client.hpp"

using namespace dinodia::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSupervisorToken = "sup-token-behaviour-41c2";
const std::string kHubToken = "hub-token-behaviour-8d1e";
const std::string kAuthHeader = "Authorization: Bearer " + kHubToken + "\r\n";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Usage tracking off: its own Home Assistant connection is not what these tests watch.
json agent_options() {
  json options = lan_agent_options(kHubToken);
  options["log_level"] = "debug";  // even debug output must not carry secrets
  return options;
}

// `bridge_timeouts`: DINODIA_BRIDGE_TIMEOUTS; empty: not set.
AgentSetup agent_setup(const TempDir& dir, const std::string& supervisor_url,
                       const std::string& bridge_timeouts) {
  return {dir.path(),
          "",
          supervisor_url,
          kSupervisorToken,
          {{"DINODIA_BRIDGE_TIMEOUTS", bridge_timeouts}}};
}

class Stack {
 public:
  explicit Stack(const std::string& bridge_timeouts)
      : fake_(dir_, kSupervisorToken, 12), agent_(agent_setup(dir_, fake_.url(), bridge_timeouts)) {
    agent_.start(agent_options());
  }

  ~Stack() { check_no_secrets(agent_.all_logs(), {kSupervisorToken, kHubToken}); }

  std::uint16_t port() const { return static_cast<std::uint16_t>(agent_.port()); }
  Process& agent() { return agent_.process(); }

  void authenticate(WsClient& client) { ws_authenticate(client, port(), kHubToken); }

  // What fake_ha's REST side received (GET /_fake/requests).
  json fake_requests() const { return fake_.requests(); }

  // A command straight to the fake's WebSocket (not through the agent).
  json fake_ws_command(json command) const { return fake_.ws_command(std::move(command)); }

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  AgentProcess agent_;
};

std::string get_request(bool keep_alive = true) {
  return "GET /api/ HTTP/1.1\r\nHost: x\r\n" + kAuthHeader +
         (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
}

}  // namespace

// ------------------------------------------------------------------ DINODIA_BRIDGE_TIMEOUTS

TEST_CASE("DINODIA_BRIDGE_TIMEOUTS: a bad key or value stops start-up with an error naming it") {
  struct Case {
    std::string value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"idle=2,bogus=1", "unknown key 'bogus'"},
      {"idle=0", "value '0' for key 'idle' is invalid"},
      {"ws_ping=1x", "value '1x' for key 'ws_ping' is invalid"},
      {"header=3601", "value '3601' for key 'header' is invalid"},
      {"ws_auth=", "value '' for key 'ws_auth' is invalid"},
      {"idle", "'idle' is not key=seconds"},
      {"idle=2,,header=2", "'' is not key=seconds"},
      {"idle=2,idle=3", "key 'idle' given twice"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    AgentProcess fixture(agent_setup(dir, "http://127.0.0.1:1", c.value));
    fixture.launch(agent_options().dump());
    Process& agent = fixture.process();
    auto code = agent.wait(std::chrono::seconds(10));
    INFO(c.value << " -> " << agent.log());
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(agent.count_log("DINODIA_BRIDGE_TIMEOUTS: " + c.expected) == 1);
    CHECK(agent.count_log("Listening") == 0);
  }
}

TEST_CASE("DINODIA_BIND_ADDRESS that is not an IP stops start-up with exit code 2") {
  // A configuration error like a bad option (docs/compatibility.md#environment), not a start-up
  // failure such as a taken port (exit 1).
  TempDir dir;
  AgentProcess fixture(agent_setup(dir, "http://127.0.0.1:1", ""));
  fixture.launch(agent_options().dump(), {{"DINODIA_BIND_ADDRESS", "hub.local"}});
  Process& agent = fixture.process();
  auto code = agent.wait(std::chrono::seconds(10));
  INFO(agent.log());
  REQUIRE(code);
  CHECK(*code == 2);
  CHECK(agent.count_log("Invalid configuration: bind address 'hub.local' is not an IP") == 1);
  CHECK(agent.count_log("Listening") == 0);
}

TEST_CASE("DINODIA_BRIDGE_TIMEOUTS: every key at once, spaces around items, is accepted") {
  TempDir dir;
  AgentProcess fixture(
      agent_setup(dir, "http://127.0.0.1:1", " idle=3, header=2 ,io=5,ws_auth=2,ws_ping=1 "));
  fixture.launch(agent_options().dump());
  Process& agent = fixture.process();
  auto line = agent.wait_for_log("Listening {");
  INFO(agent.log());
  CHECK(line);
  CHECK(agent.count_log("DINODIA_BRIDGE_TIMEOUTS") == 0);
}

// ------------------------------------------------------------------ WebSocket pings

TEST_CASE("WebSocket: the agent pings a quiet client every ws_ping interval and keeps it") {
  Stack s("ws_ping=1");
  WsClient client;
  s.authenticate(client);
  const auto start = Clock::now();
  // A pending read answers each ping with a pong, as every WebSocket client does.
  WsEvent event = client.read(std::chrono::milliseconds(4500));
  INFO(event.describe());
  CHECK(event.kind == WsEvent::Kind::timeout);
  const auto pings = client.pings_received();
  CHECK(pings.size() >= 3);
  CHECK(pings.size() <= 5);
  for (std::size_t i = 1; i < pings.size(); ++i) {
    const double gap = std::chrono::duration<double>(pings[i] - pings[i - 1]).count();
    INFO("gap between ping " << i - 1 << " and " << i << ": " << gap << " s");
    CHECK(gap > 0.7);
    CHECK(gap < 1.6);
  }
  // Still relaying after 4 ping intervals of silence from the client's application.
  client.send_json({{"id", 1}, {"type", "ping"}});
  CHECK(client.read_result(1)["type"] == "pong");
  CHECK(seconds_since(start) > 4.0);
}

TEST_CASE("WebSocket: without the override no ping comes within 3 s (the interval is 30 s)") {
  Stack s("");
  WsClient client;
  s.authenticate(client);
  CHECK(client.read(std::chrono::seconds(3)).kind == WsEvent::Kind::timeout);
  CHECK(client.pings_received().empty());
}

TEST_CASE("WebSocket: a client that never answers pings is closed after two ping intervals") {
  Stack s("ws_ping=1");
  WsClient client;
  s.authenticate(client);
  const auto start = Clock::now();
  // No read from here on: the agent's pings stay unanswered. Its debug log says when it gives
  // up on the client.
  auto line = s.agent().wait_for_log("WS client read ended", std::chrono::seconds(6));
  const double took = seconds_since(start);
  REQUIRE(line);
  CHECK(line->find("timeout") != std::string::npos);
  CHECK(took > 1.0);  // the first ping (at 1 s) is not enough to be dropped
  CHECK(took < 3.5);
  WsEvent event = client.read(std::chrono::seconds(5));
  INFO(event.describe());
  CHECK(event.ended());
  // The upstream connection for that client is closed too, and the agent keeps serving.
  WsClient another;
  s.authenticate(another);
}

// ------------------------------------------------------------------ HTTP keep-alive idle timeout

TEST_CASE("HTTP: an idle keep-alive client connection is closed after idle_timeout, not before") {
  Stack s("idle=2");
  RawSocket raw(s.port());
  REQUIRE(raw.send(get_request()));
  CHECK(status_of(raw.read_response(std::chrono::seconds(5))) == 200);

  // A second request inside the idle window reuses the connection and restarts the wait.
  CHECK(raw.read_until_close(std::chrono::milliseconds(1500)).empty());
  REQUIRE_FALSE(raw.peer_closed());
  REQUIRE(raw.send(get_request()));
  CHECK(status_of(raw.read_response(std::chrono::seconds(5))) == 200);

  const auto idle_from = Clock::now();
  CHECK(raw.read_until_close(std::chrono::milliseconds(1500)).empty());
  CHECK_FALSE(raw.peer_closed());
  raw.read_until_close(std::chrono::seconds(3));
  CHECK(raw.peer_closed());
  const double took = seconds_since(idle_from);
  CHECK(took > 1.8);
  CHECK(took < 3.5);
}

TEST_CASE("HTTP: without the override an idle keep-alive client is still served after 3 s") {
  Stack s("");
  RawSocket raw(s.port());
  REQUIRE(raw.send(get_request()));
  CHECK(status_of(raw.read_response(std::chrono::seconds(5))) == 200);
  CHECK(raw.read_until_close(std::chrono::seconds(3)).empty());
  CHECK_FALSE(raw.peer_closed());
  REQUIRE(raw.send(get_request(/*keep_alive=*/false)));
  CHECK(status_of(raw.read_response(std::chrono::seconds(5))) == 200);
}

// ------------------------------------------------------------------ Expect: 100-continue

TEST_CASE("HTTP: Expect 100-continue, the client waits for 100 before it sends the body") {
  Stack s("");
  const std::string body = R"({"entity_id":"light.kitchen_100_continue"})";
  const std::string head = "POST /api/services/light/turn_on HTTP/1.1\r\nHost: x\r\n" +
                           kAuthHeader +
                           "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                           "Content-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";

  SECTION("an accepted request gets 100 Continue, then the relayed answer") {
    RawSocket raw(s.port());
    REQUIRE(raw.send(head));
    const std::string interim = raw.read_until("\r\n\r\n", std::chrono::seconds(3));
    INFO(interim);
    REQUIRE(status_of(interim) == 100);
    CHECK(interim.find("HTTP/1.1 200") == std::string::npos);  // no final answer yet
    REQUIRE(raw.send(body));
    const std::string final_answer = raw.read_response(std::chrono::seconds(5));
    INFO(final_answer);
    // The interim response may have been read together with the final one.
    std::string rest = final_answer;
    if (status_of(rest) == 100) rest = rest.substr(rest.find("\r\n\r\n") + 4);
    CHECK(status_of(rest) == 200);

    bool seen = false;
    for (const auto& r : s.fake_requests()) {
      if (r["target"] != "/core/api/services/light/turn_on") continue;
      seen = true;
      CHECK(r["body"] == body);  // the body sent after the 100 reached Home Assistant whole
      for (const auto& h : r["headers"]) {
        std::string name = h[0];
        for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
        CHECK(name != "expect");  // hop-by-hop: answered here, not forwarded
      }
    }
    CHECK(seen);
  }
  SECTION("a request without a valid hub token gets 401 and no 100, and no body is needed") {
    RawSocket raw(s.port());
    std::string bad = head;
    bad.replace(bad.find(kHubToken), kHubToken.size(), "wrong-token");
    REQUIRE(raw.send(bad));
    const std::string out = raw.read_until("\r\n\r\n", std::chrono::seconds(3));
    INFO(out);
    CHECK(status_of(out) == 401);
    for (const auto& r : s.fake_requests()) {
      CHECK(r["target"] != "/core/api/services/light/turn_on");
    }
  }
}

// ------------------------------------------------------------------ home-assistant-js-websocket

namespace {

std::optional<std::string> find_node() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/node";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// Runs tests/node/ha_js_client.mjs and returns its one JSON result line.
json run_js_client(const std::string& hub_url, const std::string& token, int* exit_code) {
  const std::string dir = source_dir() + "/tests/node";
  const auto node = find_node();
  if (!node) FAIL("node is not installed: run scripts/install-deps.sh");
  if (!file_exists(dir + "/node_modules/home-assistant-js-websocket/package.json") ||
      !file_exists(dir + "/node_modules/ws/package.json")) {
    FAIL("tests/node/node_modules is missing: run scripts/install-deps.sh (npm ci in tests/node)");
  }
  TempDir tmp;
  Process js({*node, dir + "/ha_js_client.mjs", hub_url, token}, {}, tmp.file("node.log"));
  auto code = js.wait(std::chrono::seconds(40));
  INFO(js.log());
  REQUIRE(code);
  *exit_code = *code;
  std::stringstream lines(js.log());
  std::string line;
  std::string last_json;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') last_json = line;
  }
  REQUIRE_FALSE(last_json.empty());
  return json::parse(last_json);
}

}  // namespace

TEST_CASE(
    "home-assistant-js-websocket: connect, subscribeEntities, callService through the agent") {
  Stack s("");
  const std::string hub_url = "http://127.0.0.1:" + std::to_string(s.port());
  int code = -1;
  json result = run_js_client(hub_url, kHubToken, &code);
  INFO(result.dump());
  CHECK(code == 0);
  REQUIRE(result["ok"] == true);
  CHECK(result["entityCount"] == 12);  // fake_ha --entities 12: the whole state map arrived
  CHECK(result["haVersion"].is_string());
  const std::string entity = result["entityId"];
  // The service call went through the relay to Home Assistant with that entity as its target.
  json received = s.fake_ws_command({{"type", "fake/received"}});
  REQUIRE(received["success"] == true);
  bool called = false;
  for (const auto& m : received["result"]) {
    if (m.value("type", "") == "call_service" && m.value("domain", "") == "homeassistant" &&
        m.value("service", "") == "update_entity" &&
        m.value("target", json::object()).value("entity_id", json()) == entity) {
      called = true;
    }
  }
  CHECK(called);
}

TEST_CASE("home-assistant-js-websocket: a wrong hub token fails with ERR_INVALID_AUTH") {
  Stack s("");
  const std::string hub_url = "http://127.0.0.1:" + std::to_string(s.port());
  int code = -1;
  json result = run_js_client(hub_url, "not-a-hub-token", &code);
  INFO(result.dump());
  CHECK(code == 1);
  CHECK(result["ok"] == false);
  CHECK(result["error"] == "ERR_INVALID_AUTH");
  CHECK(result["stage"] == "connect");
}
