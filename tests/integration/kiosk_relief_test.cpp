// The LAN bridge's kiosk-load relief end to end (docs/lan-bridge.md#kiosk-relief): the real
// agent in front of fake_ha, with the agent's own event stream to the fake's WebSocket. What
// reaches Home Assistant is read from the fake's record of every request; what the clients get
// is read byte for byte from raw sockets and compared with what the relay sends and with what
// the fake answers directly.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/raw_socket.hpp"
#include "tests/support/ws_client.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kHubToken = "relief-hub-token";
const std::string kOtherToken = "relief-other-token";
const std::string kSupervisorToken = "supervisor-secret-relief-51c2";
const std::string kStatusToken = "relief-status-token";

// The kiosk's three reads, as okhttp sends them.
std::string kiosk_get(const std::string& path, const std::string& token = kHubToken,
                      const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: hub.local:8099\r\nAuthorization: Bearer " + token +
         "\r\nAccept-Encoding: gzip\r\nUser-Agent: okhttp/4.9.2\r\n" + extra + "\r\n";
}
const std::string kTemplateBody =
    R"({"template":"{% for s in states %}{{ s.entity_id }},{{ area_name(s.entity_id) }};{% endfor %}"})";
std::string kiosk_template(const std::string& body = kTemplateBody) {
  return "POST /api/template HTTP/1.1\r\nHost: hub.local:8099\r\nAuthorization: Bearer " +
         kHubToken +
         "\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\nUser-Agent: "
         "okhttp/4.9.2\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string service_call() {
  const std::string body = R"({"entity_id":"light.device_0"})";
  return "POST /api/services/light/turn_on HTTP/1.1\r\nHost: hub.local\r\nAuthorization: Bearer " +
         kHubToken +
         "\r\nUser-Agent: okhttp/4.9.2\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

class Stack {
 public:
  explicit Stack(json extra_options = json::object())
      : fake_(dir_, kSupervisorToken),
        agent_({dir_.path(), "", fake_.url(), kSupervisorToken, {}}) {
    json options = lan_agent_options(kHubToken);
    options["hub_tokens"] = json::array({kHubToken, kOtherToken});
    options["port"] = free_loopback_port();
    options["sync_status_token"] = kStatusToken;
    options["kiosk_relief_window_ms"] = 5000;  // long enough that no test depends on timing
    options.update(extra_options);
    port = agent_.start(options);
  }
  ~Stack() { check_no_secrets(agent_.all_logs(), {kHubToken, kOtherToken, kSupervisorToken}); }

  // One request on a fresh connection; the whole raw answer.
  std::string ask(const std::string& request) const {
    RawSocket socket(port);
    REQUIRE(socket.send(request));
    return socket.read_response(10s);
  }
  // The same request from `n` clients at once.
  std::vector<std::string> ask_together(const std::string& request, int n) const {
    std::vector<std::future<std::string>> answers;
    for (int i = 0; i < n; ++i) {
      answers.push_back(std::async(std::launch::async, [this, &request] {
        RawSocket socket(port);
        socket.send(request);
        return socket.read_response(10s);
      }));
    }
    std::vector<std::string> out;
    for (auto& a : answers) out.push_back(a.get());
    return out;
  }
  // The requests the test's clients made that reached the fake at `core_path` (the agent's own,
  // such as the doctor's GET /api/ at start-up, carry no kiosk User-Agent).
  std::size_t upstream(const std::string& core_path) const {
    std::size_t n = 0;
    for (const auto& r : fake_.requests()) {
      const std::string target = r["target"];
      if (target == "/core" + core_path &&
          r["headers"].dump().find(R"(["User-Agent","okhttp/4.9.2"])") != std::string::npos) {
        ++n;
      }
    }
    return n;
  }
  std::string direct_body(const std::string& core_path) const {
    auto c = fake_.client();
    auto r = c.Get(core_path, {{"Authorization", "Bearer " + kSupervisorToken}});
    REQUIRE(r);
    return r->body;
  }
  json relief_status() const { return agent_.sync_status(kStatusToken).at("kioskRelief"); }
  bool wait_stream(bool up) const {
    return wait_until([&] { return relief_status()["eventStreamUp"] == up; }, 10s);
  }
  const FakeHaProcess& fake() const { return fake_; }
  int port = 0;

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  AgentProcess agent_;
};

// Waits until a fresh `request` reaches Home Assistant at `core_path` (an event dropped what was
// held); false if it keeps being answered from memory for 3 s.
bool next_one_goes_upstream(const Stack& s, const std::string& request,
                            const std::string& core_path) {
  const std::size_t before = s.upstream(core_path);
  return wait_until(
      [&] {
        CHECK(status_of(s.ask(request)) == 200);
        return s.upstream(core_path) > before;
      },
      3s, 20ms);
}

// What a client of the kiosk's one-shot WebSocket session (src/api/haWebSocket.ts) receives:
// its auth after auth_required, one command after auth_ok, a close after the command's answer.
// Runs on the test's own threads too (sessions at once): no Catch macro inside, as Catch's
// assertions are not thread-safe; what went wrong is returned for the caller to check.
struct OneShot {
  std::string greeting;
  std::string login;
  std::string result;   // empty when the login failed
  std::string problem;  // the event that came instead of the command's answer, if any
};
OneShot one_shot(std::uint16_t port, const std::string& path, const std::string& token,
                 std::uint64_t id, const std::string& type) {
  WsClient ws;
  ws.connect(port, path);
  OneShot out;
  out.greeting = ws.read().data;
  ws.send_text(R"({"type":"auth","access_token":")" + token + R"("})");
  out.login = ws.read().data;
  if (out.login.find("auth_ok") != std::string::npos) {
    ws.send_text(R"({"id":)" + std::to_string(id) + R"(,"type":")" + type + R"("})");
    const WsEvent answer = ws.read();
    if (!answer.is_message()) out.problem = answer.describe();
    out.result = answer.data;
  }
  ws.close();
  return out;
}
// On the test's main thread: the session, checked.
OneShot checked(OneShot session) {
  INFO(session.problem);
  CHECK(session.problem.empty());
  return session;
}
OneShot kiosk_session(const Stack& s, std::uint64_t id = 1,
                      const std::string& type = "config/entity_registry/list",
                      const std::string& token = kHubToken) {
  return checked(one_shot(static_cast<std::uint16_t>(s.port), "/api/websocket", token, id, type));
}
// The same session straight to the fake, as Core answers it.
OneShot direct_session(const Stack& s, std::uint64_t id = 1,
                       const std::string& type = "config/entity_registry/list") {
  return checked(one_shot(static_cast<std::uint16_t>(s.fake().port()), "/core/api/websocket",
                          kSupervisorToken, id, type));
}
long fake_count(const Stack& s, const std::string& name) {
  return s.fake().stats().at("counts").at(name).get<long>();
}
long fake_commands(const Stack& s, const std::string& type) {
  return s.fake().stats().at("counts").at("ws_commands_by_type").value(type, 0L);
}

}  // namespace

TEST_CASE("identical reads in flight share one upstream request and its bytes") {
  Stack s;
  s.fake().post("/_fake/set", {{"read_delay_ms", 400}});

  SECTION("GET /api/states") {
    const auto answers = s.ask_together(kiosk_get("/api/states"), 4);
    CHECK(s.upstream("/api/states") == 1);
    for (const auto& a : answers) {
      CHECK(status_of(a) == 200);
      CHECK(a == answers.front());  // status, Home Assistant's fields and body, byte for byte
    }
    s.fake().post("/_fake/set", {{"read_delay_ms", 0}});
    CHECK(body_of(answers.front()) == s.direct_body("/core/api/states"));
    CHECK(answers.front().find("\r\nServer: Python/3.13 aiohttp/3.12\r\n") != std::string::npos);
    const json status = s.relief_status();
    CHECK(status["joined"].get<int>() + status["servedHeld"].get<int>() == 3);
  }
  SECTION("POST /api/template with the same body; another body is another request") {
    auto together =
        std::async(std::launch::async, [&] { return s.ask_together(kiosk_template(), 3); });
    const std::string other = s.ask(kiosk_template(R"({"template":"{{ 1 }}"})"));
    const auto answers = together.get();
    CHECK(s.upstream("/api/template") == 2);
    CHECK(status_of(other) == 200);
    for (const auto& a : answers) CHECK(a == answers.front());
    CHECK(answers.front().find("Content-Type: text/plain; charset=utf-8") != std::string::npos);
  }
  SECTION("a request with other content-negotiation fields is not joined") {
    auto together =
        std::async(std::launch::async, [&] { return s.ask_together(kiosk_get("/api/states"), 2); });
    const std::string german =
        s.ask(kiosk_get("/api/states", kHubToken, "Accept-Language: de\r\n"));
    together.get();
    CHECK(status_of(german) == 200);
    CHECK(s.upstream("/api/states") == 2);
  }
  SECTION("Range is never relieved") {
    const auto answers =
        s.ask_together(kiosk_get("/api/states", kHubToken, "Range: bytes=0-9\r\n"), 2);
    CHECK(s.upstream("/api/states") == 2);
  }
}

TEST_CASE("answers within the window come from memory until Home Assistant reports a change") {
  Stack s;
  REQUIRE(s.wait_stream(true));

  SECTION("a state_changed event drops a held /api/states") {
    const std::string first = s.ask(kiosk_get("/api/states"));
    const std::string second = s.ask(kiosk_get("/api/states"));
    CHECK(s.upstream("/api/states") == 1);
    CHECK(second == first);
    CHECK(s.relief_status()["servedHeld"] == 1);

    json state = {{"entity_id", "light.device_0"},
                  {"state", "changed-by-test"},
                  {"attributes", json::object()}};
    s.fake().post("/_fake/event", state_changed_event(state, 1767225600000));
    REQUIRE(next_one_goes_upstream(s, kiosk_get("/api/states"), "/api/states"));
    const std::string after = s.ask(kiosk_get("/api/states"));
    INFO(after.substr(0, 300));
    CHECK(body_of(after).find("changed-by-test") != std::string::npos);
  }
  SECTION("a state_changed event drops a held template answer, but not the API probe") {
    s.ask(kiosk_template());
    s.ask(kiosk_get("/api/"));
    s.ask(kiosk_template());
    s.ask(kiosk_get("/api/"));
    CHECK(s.upstream("/api/template") == 1);
    CHECK(s.upstream("/api/") == 1);
    json state = {{"entity_id", "light.new_one"}, {"state", "on"}, {"attributes", json::object()}};
    s.fake().post("/_fake/event", state_changed_event(state, 1767225600000));
    REQUIRE(next_one_goes_upstream(s, kiosk_template(), "/api/template"));
    s.ask(kiosk_get("/api/"));
    CHECK(s.upstream("/api/") == 1);  // "API running." does not depend on states
  }
  SECTION("a registry update drops a held template answer") {
    s.ask(kiosk_template());
    s.ask(kiosk_template());
    CHECK(s.upstream("/api/template") == 1);
    s.fake().post("/_fake/event", {{"event_type", "label_registry_updated"},
                                   {"data", {{"action", "create"}, {"label_id", "light"}}},
                                   {"origin", "LOCAL"},
                                   {"time_fired", "2026-12-07T03:00:00+00:00"}});
    REQUIRE(next_one_goes_upstream(s, kiosk_template(), "/api/template"));
  }
  SECTION("a write is never joined or held, and drops every held answer") {
    s.ask(kiosk_get("/api/states"));
    s.ask(kiosk_get("/api/states"));
    CHECK(s.upstream("/api/states") == 1);
    CHECK(status_of(s.ask(service_call())) == 200);
    CHECK(status_of(s.ask(service_call())) == 200);
    CHECK(s.upstream("/api/services/light/turn_on") == 2);
    s.ask(kiosk_get("/api/states"));
    CHECK(s.upstream("/api/states") == 2);
  }
  SECTION("an answer other than 2xx is never held") {
    CHECK(status_of(s.ask(kiosk_get("/api/states/sensor.missing"))) == 404);
    CHECK(status_of(s.ask(kiosk_get("/api/states/sensor.missing"))) == 404);
    CHECK(s.upstream("/api/states/sensor.missing") == 2);
  }
  SECTION("the hub token is checked before any lookup") {
    s.ask(kiosk_get("/api/states"));
    const std::string refused = s.ask(kiosk_get("/api/states", "not-a-hub-token"));
    CHECK(status_of(refused) == 401);
    CHECK(body_of(refused) == R"({"error":"Unauthorized."})");
    // Another accepted token gets the held answer, a path off the list its 403.
    CHECK(status_of(s.ask(kiosk_get("/api/states", kOtherToken))) == 200);
    CHECK(s.upstream("/api/states") == 1);
    CHECK(status_of(s.ask(kiosk_get("/api/hassio/addons", kOtherToken))) == 403);
  }
  SECTION("a client that asks Connection: close, or speaks HTTP/1.0, gets what the relay sends") {
    const std::string kept = s.ask(kiosk_get("/api/states"));
    RawSocket socket(s.port);
    REQUIRE(socket.send(kiosk_get("/api/states", kHubToken, "Connection: close\r\n")));
    const std::string closed = socket.read_until_close(5s);
    CHECK(socket.peer_closed());
    CHECK(s.upstream("/api/states") == 1);
    const std::size_t end = kept.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    std::string expected = kept;
    expected.insert(end + 2, "Connection: close\r\n");
    CHECK(closed == expected);

    std::string old = kiosk_get("/api/states");
    old.replace(old.find("HTTP/1.1"), 8, "HTTP/1.0");
    RawSocket socket10(s.port);
    REQUIRE(socket10.send(old));
    const std::string answer10 = socket10.read_until_close(5s);
    CHECK(socket10.peer_closed());
    CHECK(answer10 == expected);
    CHECK(s.upstream("/api/states") == 1);
  }
}

TEST_CASE("with the event stream down nothing is served from memory, and a restart drops it all") {
  Stack s;
  REQUIRE(s.wait_stream(true));
  s.ask(kiosk_get("/api/states"));
  s.ask(kiosk_get("/api/states"));
  REQUIRE(s.upstream("/api/states") == 1);

  // Core restarting: its WebSockets close, and the Supervisor refuses new ones until it is back.
  s.fake().control("/_fake/core?running=0");
  s.fake().control("/_fake/fault?mode=ws_502&count=-1");
  REQUIRE(s.wait_stream(false));
  // Relayed: the Supervisor's own 502 while Core is down, not the held 200.
  CHECK(status_of(s.ask(kiosk_get("/api/states"))) == 502);
  CHECK(s.upstream("/api/states") == 2);

  s.fake().control("/_fake/core?running=1");
  s.fake().control("/_fake/fault?mode=none");
  REQUIRE(s.wait_stream(true));
  CHECK(status_of(s.ask(kiosk_get("/api/states"))) == 200);
  CHECK(s.upstream("/api/states") == 3);  // nothing from before the restart
  CHECK(status_of(s.ask(kiosk_get("/api/states"))) == 200);
  CHECK(s.upstream("/api/states") == 3);  // held again
}

TEST_CASE("a window of 0 serves nothing from memory but still joins") {
  Stack s(json{{"kiosk_relief_window_ms", 0}});
  s.ask(kiosk_get("/api/states"));
  s.ask(kiosk_get("/api/states"));
  CHECK(s.upstream("/api/states") == 2);
  s.fake().post("/_fake/set", {{"read_delay_ms", 400}});
  const auto answers = s.ask_together(kiosk_get("/api/states"), 3);
  CHECK(s.upstream("/api/states") == 3);
  for (const auto& a : answers) CHECK(a == answers.front());
  CHECK(s.relief_status()["eventStreamUp"] == false);  // no stream is held for a window of 0
  CHECK(s.relief_status()["joined"] == 2);
}

TEST_CASE("kiosk_relief false relays every request") {
  Stack s(json{{"kiosk_relief", false}});
  s.fake().post("/_fake/set", {{"read_delay_ms", 300}});
  const auto answers = s.ask_together(kiosk_get("/api/states"), 3);
  CHECK(s.upstream("/api/states") == 3);
  s.ask(kiosk_template());
  s.ask(kiosk_template());
  CHECK(s.upstream("/api/template") == 2);
  const json status = s.relief_status();
  CHECK(status["enabled"] == false);
  CHECK(status["joined"] == 0);
  CHECK(status["servedHeld"] == 0);
}

TEST_CASE(
    "the kiosk's one-shot WebSocket session costs Home Assistant no login once one is known") {
  Stack s;
  REQUIRE(s.wait_stream(true));
  // The first session logs in upstream (Home Assistant's greeting and auth_ok are learnt); the
  // second is logged in from memory and its list, asked on the relief's own connection, is then
  // held.
  REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);
  const OneShot first = kiosk_session(s);
  const long logins = fake_count(s, "ws_logins");
  const long lists = fake_commands(s, "config/entity_registry/list");

  const OneShot second = kiosk_session(s);
  const OneShot other_id = kiosk_session(s, 7);
  CHECK(fake_count(s, "ws_logins") == logins);
  CHECK(fake_commands(s, "config/entity_registry/list") == lists);
  // Counted when the agent's side of the session has ended, just after the client's close: the
  // session that asked for the list did so on the relief's own connection, without a login.
  CHECK(wait_until([&] { return s.relief_status()["wsSessionsWithoutLogin"] == 3; }, 3s));

  // Byte for byte what Home Assistant says to a session of its own, with that session's id.
  const OneShot direct = direct_session(s, 7);
  CHECK(second.greeting == first.greeting);
  CHECK(second.login == direct.login);
  CHECK(second.result == first.result);
  CHECK(other_id.result == direct.result);
  CHECK(other_id.result.starts_with(R"({"id":7,)"));

  SECTION("each registry list is held on its own") {
    const OneShot areas = kiosk_session(s, 1, "config/area_registry/list");
    CHECK(areas.result == direct_session(s, 1, "config/area_registry/list").result);
    CHECK(kiosk_session(s, 2, "config/area_registry/list").result ==
          direct_session(s, 2, "config/area_registry/list").result);
    CHECK(fake_commands(s, "config/area_registry/list") == 1 + 2);  // the agent's + 2 direct
  }
  SECTION("any other command reaches Home Assistant byte for byte, after a login of its own") {
    const long before = fake_count(s, "ws_logins");
    const OneShot states = kiosk_session(s, 3, "get_states");
    CHECK(fake_count(s, "ws_logins") == before + 1);
    CHECK(states.result == direct_session(s, 3, "get_states").result);
  }
  SECTION("a command with anything more than id and type is not answered from memory") {
    WsClient ws;
    ws_authenticate(ws, static_cast<std::uint16_t>(s.port), kHubToken);
    const long before = fake_commands(s, "config/entity_registry/list");
    ws.send_text(R"({"id":4,"type":"config/entity_registry/list","extra":1})");
    CHECK(ws.read_json()["id"] == 4);
    CHECK(fake_commands(s, "config/entity_registry/list") == before + 1);
    ws.close();
  }
  SECTION("a wrong hub token gets auth_invalid, whatever is held") {
    const OneShot refused = kiosk_session(s, 1, "config/entity_registry/list", "not-a-hub-token");
    CHECK(refused.login == R"({"type":"auth_invalid","message":"Invalid hub token."})");
    CHECK(refused.result.empty());
  }
}

TEST_CASE("held registry lists: dropped by an update or a write, and sessions at once share one") {
  Stack s;
  REQUIRE(s.wait_stream(true));
  REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);  // the login is learnt
  kiosk_session(s);                                                      // the list is held
  const auto lists = [&] { return fake_commands(s, "config/entity_registry/list"); };
  const long held = lists();

  SECTION("a registry update drops it, and the next session's list says what changed") {
    s.fake().post("/_fake/set", {{"entity_registry", json::array({{{"entity_id", "light.one"},
                                                                   {"platform", "hue"},
                                                                   {"area_id", nullptr},
                                                                   {"device_id", nullptr}}})}});
    CHECK(kiosk_session(s).result.find("light.one") == std::string::npos);  // no event yet
    CHECK(lists() == held);
    s.fake().post("/_fake/event", {{"event_type", "entity_registry_updated"},
                                   {"data", {{"action", "create"}, {"entity_id", "light.one"}}},
                                   {"origin", "LOCAL"},
                                   {"time_fired", "2026-12-07T03:00:00+00:00"}});
    REQUIRE(wait_until(
        [&] { return kiosk_session(s).result.find("light.one") != std::string::npos; }, 3s, 20ms));
    CHECK(lists() == held + 1);
  }
  SECTION("an HTTP write drops it; sessions at once then share the one on its way") {
    CHECK(status_of(s.ask(service_call())) == 200);
    s.fake().post("/_fake/set", {{"read_delay_ms", 400}});
    const long served_before = s.relief_status()["servedHeld"].get<long>();
    std::vector<std::future<OneShot>> sessions;
    sessions.reserve(4);
    for (std::uint64_t id = 1; id <= 4; ++id) {
      sessions.push_back(std::async(std::launch::async, [port = s.port, id] {
        return one_shot(static_cast<std::uint16_t>(port), "/api/websocket", kHubToken, id,
                        "config/entity_registry/list");
      }));
    }
    std::vector<OneShot> answers;
    answers.reserve(sessions.size());
    for (auto& f : sessions) answers.push_back(f.get());
    for (const auto& a : answers) CHECK(a.problem.empty());
    CHECK(lists() == held + 1);
    // The three others joined the one asking (or, on a slow machine, came after its answer).
    const json status = s.relief_status();
    CHECK(status["joined"].get<long>() >= 1);
    CHECK(status["joined"].get<long>() + status["servedHeld"].get<long>() - served_before == 3);
    for (std::uint64_t id = 1; id <= 4; ++id) {
      CHECK(answers[id - 1].result == direct_session(s, id).result);
    }
  }
  SECTION("a WebSocket write drops it") {
    WsClient writer;
    ws_authenticate(writer, static_cast<std::uint16_t>(s.port), kHubToken);
    writer.send_json({{"id", 1},
                      {"type", "call_service"},
                      {"domain", "light"},
                      {"service", "turn_on"},
                      {"service_data", {{"entity_id", "light.device_0"}}}});
    CHECK(writer.read_result(1)["success"] == true);
    kiosk_session(s);
    CHECK(lists() == held + 1);
    writer.close();
  }
}

TEST_CASE("one-shot sessions log in upstream again after Home Assistant restarts") {
  Stack s;
  REQUIRE(s.wait_stream(true));
  REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);
  const long logins = fake_count(s, "ws_logins");
  kiosk_session(s);
  kiosk_session(s);
  CHECK(fake_count(s, "ws_logins") == logins + 1);  // the one that asked for the list

  // Core restarting: its WebSockets close, and the Supervisor refuses new ones until it is back.
  s.fake().control("/_fake/core?running=0");
  s.fake().control("/_fake/fault?mode=ws_502&count=-1");
  REQUIRE(s.wait_stream(false));
  // No auth_ok is given from memory while the stream is down: the session tries Home Assistant
  // (down), as without the relief.
  const OneShot during = kiosk_session(s);
  CHECK(during.login.find("auth_ok") == std::string::npos);
  s.fake().control("/_fake/core?running=1");
  s.fake().control("/_fake/fault?mode=none");
  REQUIRE(s.wait_stream(true));
  const long after_restart = fake_count(s, "ws_logins");
  CHECK(kiosk_session(s).login.find("auth_ok") != std::string::npos);
  CHECK(fake_count(s, "ws_logins") == after_restart + 1);  // learnt afresh
  kiosk_session(s);
  kiosk_session(s);
  CHECK(fake_count(s, "ws_logins") == after_restart + 2);
}

TEST_CASE("a registry list no longer held costs Home Assistant one command, not a login") {
  // The relief asks lists the window no longer covers on its own logged-in connection
  // (ha_bridge/detail/relief_upstream.hpp): with one kiosk, every refresh's list is one.
  Stack s(json{{"kiosk_relief_window_ms", 150}});
  REQUIRE(s.wait_stream(true));
  const std::string type = "config/entity_registry/list";
  const long logins = fake_count(s, "ws_logins");
  const long connections = fake_count(s, "ws_connections");
  const long lists = fake_commands(s, type);
  // The first session logs in itself (no auth_ok is known yet); the second is logged in from
  // memory and its list is the relief connection's first (its login is the second).
  REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);
  std::vector<OneShot> later;
  for (std::uint64_t id = 1; id <= 4; ++id) {
    std::this_thread::sleep_for(250ms);  // past the window: nothing held
    later.push_back(kiosk_session(s, id));
  }
  CHECK(fake_count(s, "ws_logins") == logins + 2);
  CHECK(fake_count(s, "ws_connections") == connections + 2);
  CHECK(fake_commands(s, type) == lists + 5);  // one per session: none was served from memory
  CHECK(wait_until([&] { return s.relief_status()["wsSessionsWithoutLogin"] == 4; }, 3s));
  for (std::uint64_t id = 1; id <= 4; ++id) {
    CHECK(later[id - 1].result == direct_session(s, id).result);  // byte for byte, its own id
  }

  SECTION("an error result is not shared: the session asks Home Assistant itself") {
    // fake_ha, like a Home Assistant without floors, has no config/floor_registry/list.
    const std::string floors = "config/floor_registry/list";
    const long before = fake_count(s, "ws_logins");
    const OneShot asked = kiosk_session(s, 3, floors);
    CHECK(asked.result.find("unknown_command") != std::string::npos);
    CHECK(asked.result == direct_session(s, 3, floors).result);
    CHECK(fake_count(s, "ws_logins") == before + 1 + 1);  // the session's own, and direct's
    CHECK(fake_commands(s, floors) == 3);  // the relief connection's, the session's, direct's
  }
  SECTION("Home Assistant restarting closes it; the next list logs it in again") {
    s.fake().control("/_fake/core?running=0");
    REQUIRE(s.wait_stream(false));
    s.fake().control("/_fake/core?running=1");
    REQUIRE(s.wait_stream(true));
    REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);  // learnt afresh
    const long before = fake_count(s, "ws_logins");
    std::this_thread::sleep_for(250ms);
    const OneShot again = kiosk_session(s, 5);
    CHECK(again.result == direct_session(s, 5).result);
    CHECK(fake_count(s, "ws_logins") == before + 1 + 1);  // the relief connection's, direct's
    std::this_thread::sleep_for(250ms);
    kiosk_session(s, 6);
    CHECK(fake_count(s, "ws_logins") == before + 2);
  }
}

TEST_CASE("the relief's own connection refused by the Supervisor: the session connects itself") {
  Stack s(json{{"kiosk_relief_window_ms", 150}});
  REQUIRE(s.wait_stream(true));
  REQUIRE(kiosk_session(s).login.find("auth_ok") != std::string::npos);  // the login is learnt
  const long logins = fake_count(s, "ws_logins");
  const long lists = fake_commands(s, "config/entity_registry/list");
  std::this_thread::sleep_for(250ms);
  // The next WebSocket upgrade (the relief connection's first) gets 502.
  s.fake().control("/_fake/fault?mode=ws_502&count=1");
  const OneShot session = kiosk_session(s, 2);
  CHECK(session.login.find("auth_ok") != std::string::npos);  // from memory
  CHECK(session.result == direct_session(s, 2).result);
  CHECK(fake_count(s, "ws_logins") == logins + 1 + 1);  // the session's own, and direct's
  CHECK(fake_commands(s, "config/entity_registry/list") == lists + 1 + 1);
  // The next list opens the relief connection again, and needs no session login.
  std::this_thread::sleep_for(250ms);
  const OneShot next = kiosk_session(s, 3);
  CHECK(next.result == direct_session(s, 3).result);
  CHECK(fake_count(s, "ws_logins") == logins + 2 + 1 + 1);  // + the relief's, and direct's
}
