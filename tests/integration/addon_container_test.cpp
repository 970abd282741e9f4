// The built agent run the way the add-on container runs it (addon/Dockerfile, config.yaml):
// options.json in the data folder as the Supervisor writes it (every option present),
// SUPERVISOR_TOKEN in the environment, SIGTERM to stop. Checks the health endpoint the
// Dockerfile's HEALTHCHECK calls, the exit code the Supervisor expects (0), and that bad options
// stop start-up with one clear line.
#include <httplib.h>
#include <signal.h>
#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

namespace {

using dinodia::testing::AgentProcess;
using dinodia::testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSupervisorToken = "sup-token-0b7f2c41d9e84a6f";
constexpr const char* kHubToken = "hub-token-plain-5d1e9a7c";
constexpr const char* kHaToken = "ha-llt-3c8e0f6a2b";
constexpr const char* kSyncStatusToken = "sync-status-token-77aa";
constexpr const char* kBootstrapSecret = "bootstrap-secret-c4d2e9";

// /data/options.json as the Supervisor writes it for a home upgraded from 0.4.17: every option
// present (the home once saved its configuration), plus the options this agent adds.
// `port: 0` lets the agent bind a free port in tests.
Json supervisor_options() {
  return Json{
      {"port", 0},
      {"hub_tokens", {kHubToken}},
      {"hub_token_hashes", Json::array()},
      {"ws_auth_mode", "supervisor"},
      {"ha_access_token", kHaToken},
      {"allowed_path_regex",
       {"^/api/?$", "^/api/states($|/.*)", "^/api/services/.*", "^/api/template$", "^/api/config.*",
        "^/api/camera_proxy/.*", "^/api/websocket$"}},
      {"log_level", "info"},
      {"platform_sync_enabled", false},
      {"platform_base_url", "https://app.dinodiasmartliving.com"},
      {"platform_token_state_endpoint", "/api/hub-agent/token-state"},
      {"platform_sync_interval_minutes", 60},
      {"ha_area_snapshot_refresh_minutes", 10},
      {"sync_status_token", kSyncStatusToken},
      {"hub_agent_id", "DIN-GB-00042"},
      {"hub_agent_secret", kBootstrapSecret},
      {"heating_usage_tracking_enabled", false},
      {"heating_usage_tracking_labels", {"Boiler", "Radiator"}},
      {"heating_usage_persist_path", ""},
      {"heating_usage_max_tracked_entities", 200},
      {"heating_usage_min_process_interval_ms", 1000},
      {"heating_usage_label_refresh_minutes", 30},
      {"heating_usage_gap_unknown_after_seconds", 600},
      {"heating_usage_poll_interval_seconds", 300},
      {"electric_usage_tracking_enabled", false},
      {"electric_usage_tracking_label", "Light"},
      {"electric_usage_persist_path", ""},
      {"electric_usage_max_tracked_entities", 200},
      {"electric_usage_poll_interval_seconds", 300},
      {"electric_usage_label_refresh_minutes", 5},
      {"electric_usage_gap_unknown_after_seconds", 600},
      {"platform_canary_base_url", ""},
      {"max_request_body_mb", 16},
  };
}

// The container: data folder, options file, Supervisor token; the Supervisor URL points at a
// port nothing listens on (the health endpoint must not need Home Assistant).
struct Container {
  TempDir data;
  AgentProcess agent{{data.path(), "", "http://127.0.0.1:9", kSupervisorToken, {}, 15s}};

  void start(const std::string& options_text) { agent.launch(options_text); }
  int wait_listening() { return agent.wait_listening(); }
};

httplib::Result get(int port, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  client.set_write_timeout(5);
  return client.Get(path.c_str(), headers);
}

void check_no_secrets(const std::string& text) {
  dinodia::testing::check_no_secrets(
      text, {kSupervisorToken, kHubToken, kHaToken, kSyncStatusToken, kBootstrapSecret});
}

// Lines of the log that contain `needle`.
std::vector<std::string> lines_with(const std::string& log, const std::string& needle) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < log.size()) {
    std::size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    start = end + 1;
  }
  return out;
}

// Starts the agent with options that must be refused; returns the one error line.
std::string refused_line(const std::string& options_text) {
  Container c;
  c.start(options_text);
  auto code = c.agent.process().wait(5s);
  std::string log = c.agent.process().log();
  INFO(log);
  REQUIRE(code.has_value());
  CHECK(*code != 0);
  CHECK(log.find("Listening") == std::string::npos);
  auto errors = lines_with(log, "ERROR");
  REQUIRE(errors.size() == 1);
  check_no_secrets(log);
  return errors[0];
}

}  // namespace

TEST_CASE("the agent serves the health check without a token and stops with 0 on SIGTERM",
          "[addon][container]") {
  Container c;
  c.start(supervisor_options().dump(2));
  int port = c.wait_listening();

  auto res = get(port, "/_dinodia/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(Json::parse(res->body) == Json{{"ok", true}});
  CHECK(res->get_header_value("Content-Type").find("application/json") == 0);
  // It reveals nothing: the same answer with any token or query, and no version or secrets.
  auto with_junk = get(port, "/_dinodia/health?verbose=1", {{"Authorization", "Bearer nope"}});
  REQUIRE(with_junk);
  CHECK(with_junk->status == 200);
  CHECK(with_junk->body == res->body);
  std::string everything = res->body;
  for (const auto& [name, value] : res->headers) everything += name + ": " + value + "\n";
  check_no_secrets(everything);
  CHECK(everything.find("1.0.0") == std::string::npos);
  CHECK_FALSE(res->has_header("Set-Cookie"));

  // The Supervisor stops the container with SIGTERM and expects exit code 0 (not 143).
  c.agent.process().signal(SIGTERM);
  auto code = c.agent.process().wait(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  check_no_secrets(c.agent.process().log());
}

TEST_CASE("an unknown option key starts the agent with a warning", "[addon][container]") {
  Json options = supervisor_options();
  options["removed_in_some_release"] = true;
  Container c;
  c.start(options.dump());
  int port = c.wait_listening();
  auto warnings = lines_with(c.agent.process().log(), "WARN");
  bool named = false;
  for (const auto& w : warnings)
    named = named || w.find("removed_in_some_release") != std::string::npos;
  INFO(c.agent.process().log());
  CHECK(named);
  auto res = get(port, "/_dinodia/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  c.agent.process().signal(SIGTERM);
  auto code = c.agent.process().wait(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("malformed options stop start-up with one line naming the option and value",
          "[addon][container]") {
  SECTION("not JSON") {
    std::string line = refused_line("{\"port\": 8099,");
    CHECK(line.find("not valid JSON") != std::string::npos);
  }
  SECTION("wrong type") {
    Json options = supervisor_options();
    options["port"] = "8099";
    std::string line = refused_line(options.dump());
    CHECK(line.find("'port'") != std::string::npos);
    CHECK(line.find("\"8099\"") != std::string::npos);
  }
  SECTION("out of range") {
    Json options = supervisor_options();
    options["platform_sync_interval_minutes"] = 1;
    std::string line = refused_line(options.dump());
    CHECK(line.find("'platform_sync_interval_minutes'") != std::string::npos);
    CHECK(line.find("value 1 ") != std::string::npos);
    CHECK(line.find("2 to 1440") != std::string::npos);
  }
  SECTION("absolute token-state endpoint together with a canary") {
    // 0.4.17 had no canary; with one, an endpoint naming its own host would take the canary's
    // token-state calls elsewhere (docs/compatibility.md#options).
    Json options = supervisor_options();
    options["platform_canary_base_url"] = "https://api-origin.dinodiasmartliving.com";
    options["platform_token_state_endpoint"] =
        "https://app.dinodiasmartliving.com/api/hub-agent/token-state";
    std::string line = refused_line(options.dump());
    CHECK(line.find("ERROR Invalid options: option 'platform_token_state_endpoint'") !=
          std::string::npos);
    CHECK(line.find("'platform_canary_base_url'") != std::string::npos);
  }
  SECTION("not an object") {
    std::string line = refused_line("[]");
    CHECK(line.find("JSON object") != std::string::npos);
  }
}

TEST_CASE("an allowed_path_regex entry that does not compile is skipped, not fatal",
          "[addon][container]") {
  // 0.4.17 dropped a pattern it could not compile and went on; so does the agent, with a
  // warning (docs/compatibility.md#options).
  Json options = supervisor_options();
  options["allowed_path_regex"] = {"^/api/states$", "^/api/(unclosed"};
  Container c;
  c.start(options.dump());
  int port = c.wait_listening();
  const std::string log = c.agent.process().log();
  INFO(log);
  const auto warnings = lines_with(log, "WARN option 'allowed_path_regex': entry 2 of 2");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("^/api/(unclosed") != std::string::npos);
  CHECK(lines_with(log, "ERROR").empty());
  auto res = get(port, "/_dinodia/health");
  REQUIRE(res);
  CHECK(res->status == 200);
  c.agent.process().signal(SIGTERM);
  auto code = c.agent.process().wait(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  check_no_secrets(c.agent.process().log());
}

TEST_CASE("a refused secret option is named but its value is not logged",
          "[addon][container][secrets]") {
  // A hub token typed as a string instead of a list is still a hub token.
  Json options = supervisor_options();
  options["hub_tokens"] = kHubToken;
  std::string line = refused_line(options.dump());
  CHECK(line.find("'hub_tokens'") != std::string::npos);
}
