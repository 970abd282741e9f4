// The Home Assistant stand-in's counts of what reaches it (tests/fakes/fake_ha_stats.cpp), which
// the kiosk-relief benchmark reads as "Home Assistant work" (bench/README.md#kiosk-relief):
// REST requests by path, WebSocket connections, logins, commands by type, template renders, and
// their reset. Talks to the real fake_ha over real sockets.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/ws_client.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kToken = "stats-supervisor-token-3c1d";

json counts(const FakeHaProcess& fake) {
  return fake.stats().at("counts");
}

// One WebSocket session straight to the fake: auth with `token`, then `commands` (ids 1..n),
// each answered before the next; returns the auth answer's type.
std::string ws_session(const FakeHaProcess& fake, const std::string& token,
                       const std::vector<std::string>& commands) {
  WsClient ws;
  ws.connect(static_cast<std::uint16_t>(fake.port()), "/core/api/websocket");
  REQUIRE(ws.read_json()["type"] == "auth_required");
  ws.send_json({{"type", "auth"}, {"access_token", token}});
  const std::string auth = ws.read_json().value("type", "");
  int id = 0;
  for (const auto& type : commands) {
    ws.send_json({{"id", ++id}, {"type", type}});
    ws.read_result(id);
  }
  ws.close();
  return auth;
}

}  // namespace

TEST_CASE(
    "fake_ha counts the requests, WebSocket logins, commands and template renders it serves") {
  TempDir dir;
  FakeHaProcess fake(dir, kToken, 10);
  fake.control("/_fake/stats/reset");
  auto client = fake.client();
  const httplib::Headers auth{{"Authorization", "Bearer " + kToken}};
  const std::string tmpl = R"({"template":"{{ states | count }}"})";

  REQUIRE(client.Get("/core/api/", auth)->status == 200);
  REQUIRE(client.Get("/core/api/", auth)->status == 200);
  REQUIRE(client.Get("/core/api/")->status == 401);  // refused, but it reached Home Assistant
  REQUIRE(client.Get("/core/api/states?ts=1", auth)->status == 200);
  REQUIRE(client.Post("/core/api/template", auth, tmpl, "application/json")->status == 200);
  REQUIRE(client.Post("/core/api/template", auth, "not json", "application/json")->status == 400);

  CHECK(ws_session(fake, kToken, {"config/entity_registry/list", "ping", "ping"}) == "auth_ok");
  CHECK(ws_session(fake, "wrong-token", {}) == "auth_invalid");

  const json c = counts(fake);
  CHECK(c["http_requests"] == 6);
  CHECK(c["http_by_path"] ==
        json({{"/core/api/", 3}, {"/core/api/states", 1}, {"/core/api/template", 2}}));
  CHECK(c["template_renders"] == 1);  // the malformed body rendered nothing
  CHECK(c["ws_connections"] == 2);
  CHECK(c["ws_logins"] == 1);
  CHECK(c["ws_auth_invalid"] == 1);
  CHECK(c["ws_commands"] == 3);
  CHECK(c["ws_commands_by_type"] == json({{"config/entity_registry/list", 1}, {"ping", 2}}));

  SECTION("control requests are not Home Assistant work") {
    fake.post("/_fake/set", {{"ws_admin", true}});
    fake.stats();
    CHECK(counts(fake)["http_requests"] == 6);
  }

  SECTION("a reset zeroes the counts only; the older fields keep counting from the start") {
    const json before = fake.stats();
    fake.control("/_fake/stats/reset");
    const json after = fake.stats();
    CHECK(after["counts"]["http_requests"] == 0);
    CHECK(after["counts"]["http_by_path"] == json::object());
    CHECK(after["counts"]["ws_logins"] == 0);
    CHECK(after["counts"]["ws_commands_by_type"] == json::object());
    CHECK(after["counts"]["template_renders"] == 0);
    CHECK(after["requests_total"] == before["requests_total"]);
    CHECK(after["ws_connections_total"] == 2);
    REQUIRE(client.Get("/core/api/", auth)->status == 200);
    CHECK(counts(fake)["http_by_path"] == json({{"/core/api/", 1}}));
  }
}

TEST_CASE("fake_ha renders device_id null for entities of integrations without devices") {
  // The kiosk opens its registry WebSocket when any device_id is missing (bench/kiosk_profile.cpp).
  TempDir dir;
  FakeHaProcess fake(dir, kToken, 3);
  fake.post("/_fake/set",
            {{"states", json::array({{{"entity_id", "sun.sun"}, {"state", "above_horizon"}}})}});
  auto r = fake.client().Post("/core/api/template", {{"Authorization", "Bearer " + kToken}},
                              R"({"template":"x"})", "application/json");
  REQUIRE(r);
  const json rendered = json::parse(r->body);
  REQUIRE(rendered.size() == 4);
  for (const auto& item : rendered) {
    INFO(item.dump());
    CHECK(item["device_id"].is_null() == (item["entity_id"] == "sun.sun"));
  }
}
