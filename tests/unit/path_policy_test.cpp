// Request-target normalisation and the default allow-list (docs/compatibility.md#paths).
// Expected values were produced with Node 20's WHATWG URL parser (new URL(t, "http://localhost")),
// the parser the legacy agent uses.
#include "ha_bridge/path_policy.hpp"

#include "agent/options.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using dinodia::ha_bridge::AllowList;
using dinodia::ha_bridge::names_action_config;
using dinodia::ha_bridge::names_hassio_service;
using dinodia::ha_bridge::normalise_target;

namespace {

struct Vector {
  std::string target;
  std::string pathname;
  std::string client_path;
  std::string search;
};

const std::vector<std::string> kDefaultAllowList = {
    "^/api/?$",       "^/api/states($|/.*)",   "^/api/services/.*", "^/api/template$",
    "^/api/config.*", "^/api/camera_proxy/.*", "^/api/websocket$"};

}  // namespace

TEST_CASE("normalise_target reproduces the WHATWG parser the legacy agent used") {
  const std::vector<Vector> vectors = {
      {"/api/states", "/api/states", "/api/states", ""},
      {"/api//states", "/api//states", "/api/states", ""},  // collapsed
      {"//api/states", "/states", "/states", ""},           // scheme-relative: host "api"
      {"///api/states", "/states", "/states", ""},
      {"//a:80/x", "/x", "/x", ""},
      {"//api", "/", "/", ""},
      {"/\\x/y", "/y", "/y", ""},
      {"/%2e%2e/api", "/api", "/api", ""},
      {"/api/%2E%2e/x", "/x", "/x", ""},
      {"/api/.%2E/states", "/states", "/states", ""},
      {"/api/%2e.", "/", "/", ""},
      {"/%2e/api", "/api", "/api", ""},
      {"/../../api", "/api", "/api", ""},  // '..' above the root stays at the root
      {"/api/./states/.", "/api/states/", "/api/states/", ""},
      {"/api/states/..", "/api/", "/api/", ""},
      {"/api\\states", "/api/states", "/api/states", ""},
      {"/api/states#frag", "/api/states", "/api/states", ""},
      {"/api?a#b", "/api", "/api", "?a"},
      {"/api/states?x=1&y=a b", "/api/states", "/api/states", "?x=1&y=a%20b"},
      {"/api/states/light.x?ts=1700000000.123", "/api/states/light.x", "/api/states/light.x",
       "?ts=1700000000.123"},
      {"/a^b`{c}\"d<e>", "/a^b%60%7Bc%7D%22d%3Ce%3E", "/a^b%60%7Bc%7D%22d%3Ce%3E", ""},
      {"/a%2fb", "/a%2fb", "/a%2fb", ""},  // other escapes stay encoded
      {"/api/states/%2e%2e%2fx", "/api/states/%2e%2e%2fx", "/api/states/%2e%2e%2fx", ""},
      {"/a'b?c'd", "/a'b", "/a'b", "?c%27d"},
      {"/?", "/", "/", ""},  // an empty query serialises as no search at all
      {"/api/\xE9", "/api/%C3%A9", "/api/%C3%A9", ""},  // Node reads raw bytes as latin1
      {"/_dinodia//health", "/_dinodia//health", "/_dinodia/health", ""},
  };
  for (const auto& v : vectors) {
    INFO("target: " << v.target);
    auto n = normalise_target(v.target);
    REQUIRE(n.has_value());
    CHECK(n->pathname == v.pathname);
    CHECK(n->client_path == v.client_path);
    CHECK(n->search == v.search);
  }
}

TEST_CASE("normalise_target rejects targets that are not origin-form") {
  for (const char* t : {"", "*", "http://localhost/api/states", "api/states", "\\api", "//",
                        "//:80/x", "//a:99999/x", "//a b/x"}) {
    INFO("target: " << t);
    CHECK_FALSE(normalise_target(t).has_value());
  }
}

TEST_CASE("the default allow-list makes the legacy decisions") {
  const AllowList allow(kDefaultAllowList);
  for (const char* p :
       {"/api", "/api/", "/api/states", "/api/states/light.kitchen", "/api/services/light/turn_on",
        "/api/services/hassio/addon_stop", "/api/template", "/api/config",
        "/api/config/config_entries/flow/abc", "/api/config/automation/config/1",
        "/api/camera_proxy/camera.door", "/api/websocket"}) {
    INFO("path: " << p);
    CHECK(allow.allows(p));
  }
  for (const char* p :
       {"/", "/states", "/api/history/period", "/api/logbook", "/api/events", "/api/stream",
        "/api/camera_proxy_stream/camera.door", "/api/statesx", "/api/template/x",
        "/api/websocket/x", "/apix", "/_dinodia/health", "/api/error_log"}) {
    INFO("path: " << p);
    CHECK_FALSE(allow.allows(p));
  }
}

TEST_CASE("an empty allow-list denies everything, patterns use search semantics") {
  CHECK_FALSE(AllowList({}).allows("/api/states"));
  // JavaScript RegExp.test: an unanchored pattern matches anywhere in the path.
  CHECK(AllowList({"states"}).allows("/api/states"));
  CHECK_FALSE(AllowList({"^states"}).allows("/api/states"));
}

TEST_CASE("normalised paths are what the allow-list decides on") {
  const AllowList allow(kDefaultAllowList);
  CHECK(allow.allows(normalise_target("/api//states")->client_path));
  CHECK_FALSE(allow.allows(normalise_target("//api/states")->client_path));
  CHECK(allow.allows(normalise_target("/foo/%2e%2e/api/states")->client_path));
  CHECK_FALSE(allow.allows(normalise_target("/api/states/../../api/history")->client_path));
}

TEST_CASE("a very long path is not allowed and does not exhaust the stack (fuzzing finding)") {
  dinodia::ha_bridge::AllowList list(
      dinodia::agent::parse_options("{}").options.allowed_path_regex);
  const std::string long_path = "/api/states/" + std::string(31000, 'a');
  CHECK_FALSE(list.allows(long_path));
  CHECK(list.allows("/api/states/" + std::string(1000, 'a')));
}

TEST_CASE("an allow-list from options with skipped patterns decides, and remembers, on the rest") {
  // Lookbehind, a named group and "(" are skipped by the options loader (valid JavaScript for the
  // first two; docs/compatibility.md#options); the bridge builds its list from what is left.
  const auto loaded = dinodia::agent::parse_options(
      R"({"allowed_path_regex": ["(?<=/api/)config$", "^/api/(?<n>states)$", "(", "^/api/$"]})");
  REQUIRE(loaded.options.allowed_path_regex == std::vector<std::string>{"^/api/$"});
  const AllowList list(loaded.options.allowed_path_regex);
  for (int round = 0; round < 2; ++round) {  // the second round answers from the cache
    CHECK(list.allows_remembered("/api/"));
    CHECK_FALSE(list.allows_remembered("/api/config"));
    CHECK_FALSE(list.allows_remembered("/api/states"));
  }
}

TEST_CASE("remembered decisions belong to their list, even one built at another's address") {
  // Lists built one after another in the same storage: the second must not answer with the
  // first one's remembered decisions.
  for (const auto& [pattern, allowed] : std::vector<std::pair<std::string, bool>>{
           {"^/api/states$", true}, {"^/api/$", false}, {"^/api/states$", true}}) {
    std::optional<AllowList> list;
    list.emplace(std::vector<std::string>{pattern});
    CHECK(list->allows_remembered("/api/states") == allowed);
    CHECK(list->allows_remembered("/api/states") == allowed);
  }
}

TEST_CASE("plain targets take a shortcut that normalises exactly as the whole parser does") {
  const std::vector<std::string> targets = {
      "/",
      "/api/",
      "/api",
      "/api/states",
      "/api/states/light.kitchen",
      "/api/camera_proxy/camera.front_door?token=abc&time=1700000000123",
      "/api/template?",
      "/api/?a=b?c=d/e",
      "/api/services/light/turn_on",
      "/api/config/config_entries/flow/0123abcd",
      "/_dinodia/sync-status",
      "/api/states/sensor.a:b@c!$&()*+,;=",
      // Not plain: these go through the whole parser.
      "/api//states",
      "//api/states",
      "/api/./states",
      "/api/../x",
      "/api/%2e%2e/x",
      "/api/states#frag",
      "/api/states?q=a b",
      "/api\\states",
      "/api/states?x='y'",
      "/api/caf\xc3\xa9",
  };
  for (const auto& t : targets) {
    INFO(t);
    const auto shortcut = normalise_target(t);
    const auto full = dinodia::ha_bridge::normalise_target_fully(t);
    REQUIRE(shortcut.has_value() == full.has_value());
    if (!shortcut) continue;
    CHECK(shortcut->pathname == full->pathname);
    CHECK(shortcut->client_path == full->client_path);
    CHECK(shortcut->search == full->search);
  }
}

TEST_CASE("names_hassio_service: the hassio domain as Home Assistant would read it") {
  for (const char* path :
       {"/api/services/hassio/host_reboot", "/api/services/HASSIO/addon_stop",
        "/api/services/%68assio/x", "/api/services/hass%69%6f/x", "/api/services/hass%49%4F/x",
        "/API/Services/hassio/x", "/api/services/hassio", "/api/services/hassio/"}) {
    INFO(path);
    CHECK(names_hassio_service(path));
  }
  for (const char* path :
       {"/api/services/hassi/x", "/api/services/hassio_x/y", "/api/services/xhassio/y",
        "/api/services/light/hassio", "/api/services/%2568assio/x", "/api/services/hassio%/x",
        "/api/services/hass%6/x", "/api/hassio/host/reboot", "/api/services/", "/api/states"}) {
    INFO(path);
    CHECK_FALSE(names_hassio_service(path));
  }
}

TEST_CASE("names_action_config: script and automation configs, however the path is spelled") {
  for (const char* path :
       {"/api/config/script/config/morning", "/api/config/automation/config/1712345",
        "/api/config/%73cript/config/x", "/api/config/script%2Fconfig/x",
        "/api/config/%2573cript/config/x", "/api/config/automation%2F%2Fconfig/x",
        "/API/Config/Script/Config/x", "/api/config/script/config/"}) {
    INFO(path);
    CHECK(names_action_config(path));
  }
  for (const char* path :
       {"/api/config/script/config", "/api/config/automation", "/api/config/scene/config/x",
        "/api/config/core/check_config", "/api/config/script/reload", "/api/services/script/x",
        "/api/config/automation/configs/x", "/api/config", "/api/states"}) {
    INFO(path);
    CHECK_FALSE(names_action_config(path));
  }
}
