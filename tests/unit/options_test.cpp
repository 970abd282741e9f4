// agent/options: every legacy option keeps its name, type and config.yaml default
// (docs/compatibility.md#options); invalid values stop start-up with one clear line.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "agent/options.hpp"
#include "tests/support/process.hpp"

using dinodia::agent::load_options_file;
using dinodia::agent::OptionsError;
using dinodia::agent::parse_options;

TEST_CASE("defaults are the config.yaml defaults of legacy v0.4.17", "[options]") {
  auto o = parse_options("{}").options;
  CHECK(o.port == 8099);
  CHECK(o.ws_auth_mode == "supervisor");
  CHECK(o.platform_base_url == "https://app.dinodiasmartliving.com");
  CHECK(o.platform_token_state_endpoint == "/api/hub-agent/token-state");
  CHECK(o.platform_sync_interval_minutes == 2);
  CHECK(o.platform_sync_enabled == false);
  CHECK(o.ha_area_snapshot_refresh_minutes == 10);
  CHECK(o.allowed_path_regex == std::vector<std::string>{"^/api/?$", "^/api/states($|/.*)",
                                                         "^/api/services/.*", "^/api/template$",
                                                         "^/api/config.*", "^/api/camera_proxy/.*",
                                                         "^/api/websocket$"});
  CHECK(o.heating_usage_tracking_labels == std::vector<std::string>{"Boiler", "Radiator"});
  CHECK(o.heating_usage_persist_path == "/data/heating_usage_state.json");
  CHECK(o.electric_usage_tracking_label == "Light");
  CHECK(o.electric_usage_label_refresh_minutes == 5);
  CHECK(o.max_request_body_mb == 16);
  CHECK(o.platform_canary_base_url.empty());
}

TEST_CASE("values from the file win and strings are trimmed like legacy", "[options]") {
  auto o = parse_options(R"({"port": 9000, "hub_agent_id": "  DIN-GB-1  ",
      "platform_base_url": " https://example.test/// ", "hub_tokens": ["a", null],
      "platform_sync_interval_minutes": 60, "ws_auth_mode": "auto"})")
               .options;
  CHECK(o.port == 9000);
  CHECK(o.hub_agent_id == "DIN-GB-1");
  CHECK(o.platform_base_url == "https://example.test");
  CHECK(o.hub_tokens == std::vector<std::string>{"a"});
  CHECK(o.platform_sync_interval_minutes == 60);
  CHECK(o.ws_auth_mode == "auto");
}

TEST_CASE("a base URL is normalised in one go: whitespace before a trailing slash goes too",
          "[options]") {
  // Found by fuzz_options: trimming only before the slashes were removed left
  // "https://example.test " here, and parsing that value again gave a different one.
  auto o = parse_options(R"({"platform_base_url": "  https://example.test / /",
      "platform_canary_base_url": "https://canary.test/ "})")
               .options;
  CHECK(o.platform_base_url == "https://example.test");
  CHECK(o.platform_canary_base_url == "https://canary.test");
  auto again = parse_options(options_as_json(o).dump()).options;
  CHECK(again.platform_base_url == o.platform_base_url);
  CHECK(again.platform_canary_base_url == o.platform_canary_base_url);
}

TEST_CASE("port 0 (free port, tests only) is accepted, other out-of-range ports are not",
          "[options]") {
  CHECK(parse_options(R"({"port": 0})").options.port == 0);
  CHECK_THROWS_AS(parse_options(R"({"port": -1})"), OptionsError);
}

TEST_CASE("an unknown key is a warning, not an error", "[options]") {
  auto loaded = parse_options(R"({"no_such_option": 1})");
  REQUIRE(loaded.warnings.size() == 1);
  CHECK(loaded.warnings[0].find("no_such_option") != std::string::npos);
}

TEST_CASE("invalid values name the option, the value and the expectation", "[options]") {
  auto message = [](const std::string& json) {
    try {
      parse_options(json);
    } catch (const OptionsError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message(R"({"port": 70000})") ==
        "option 'port': value 70000 is invalid, expected an integer from 1 to 65535");
  CHECK(message(R"({"port": "8099"})").find("option 'port': value \"8099\"") == 0);
  CHECK(message(R"({"port": 80.5})").find("option 'port'") == 0);
  CHECK(message(R"({"platform_sync_interval_minutes": 1})")
            .find("expected an integer from 2 to 1440") != std::string::npos);
  CHECK(message(R"({"platform_sync_enabled": "yes"})") ==
        "option 'platform_sync_enabled': value \"yes\" is invalid, expected true or false");
  CHECK(message(R"({"ws_auth_mode": "both"})") ==
        "option 'ws_auth_mode': value \"both\" is invalid, expected one of supervisor|ha|auto");
  CHECK(message(R"({"hub_tokens": "abc"})").find("expected a list of strings") !=
        std::string::npos);
  CHECK(message(R"({"hub_tokens": [1]})").find("expected a list of strings") != std::string::npos);
  CHECK(message("not json").find("not valid JSON") != std::string::npos);
  // Credentials are never echoed into the log line.
  CHECK(message(R"({"hub_agent_secret": 12345})") ==
        "option 'hub_agent_secret': value <hidden> is invalid, expected a string");
  CHECK(message(R"({"hub_tokens": "plain-token-value"})").find("plain-token-value") ==
        std::string::npos);
  CHECK(message(R"({"sync_status_token": ["x"]})").find("<hidden>") != std::string::npos);
  CHECK(message("[1,2]") == "options file must hold a JSON object");
}

TEST_CASE("a missing options file gives defaults and a warning", "[options]") {
  dinodia::testing::TempDir dir;
  auto loaded = load_options_file(dir.file("missing.json"));
  CHECK(loaded.options.port == 8099);
  REQUIRE(loaded.warnings.size() == 1);
}

TEST_CASE("upstream WebSocket credentials follow ws_auth_mode", "[options]") {
  auto o = parse_options(R"({"ha_access_token": "llt"})").options;
  CHECK(o.upstream_ws_tokens("sup") == std::vector<std::string>{"sup"});
  o.ws_auth_mode = "ha";
  CHECK(o.upstream_ws_tokens("sup") == std::vector<std::string>{"llt"});
  o.ws_auth_mode = "auto";
  CHECK(o.upstream_ws_tokens("sup") == std::vector<std::string>{"sup", "llt"});
  CHECK(o.upstream_ws_tokens("") == std::vector<std::string>{"llt"});
}

TEST_CASE("every option spec has a parsable default of its declared type", "[options]") {
  // The spec table drives config.yaml; a default that fails its own schema would
  // make the Supervisor reject the add-on.
  std::string all = "{";
  for (const auto& spec : dinodia::agent::option_specs()) {
    if (all.size() > 1) all += ",";
    all += "\"" + std::string(spec.name) + "\":" + std::string(spec.default_json);
  }
  all += "}";
  CHECK_NOTHROW(parse_options(all));
  CHECK(parse_options(all).warnings.empty());
}

TEST_CASE("hostile option files give an OptionsError or a skipped pattern, never a crash (fuzzing)",
          "[options]") {
  CHECK_THROWS_AS(parse_options(R"({"port": 3.3e32})"), OptionsError);
  CHECK_THROWS_AS(parse_options(R"({"port": -3.3e32})"), OptionsError);
  CHECK_THROWS_AS(parse_options(R"({"port": 1e999})"), OptionsError);
  // Patterns that would crash libstdc++'s regex compiler are skipped with a warning (valid
  // JavaScript, so 0.4.17 kept them; docs/compatibility.md#options), never compiled.
  auto kept = [](const std::string& json) {
    return parse_options(json).options.allowed_path_regex;
  };
  CHECK(kept(R"({"allowed_path_regex": ["^/api/a{22222222222222222222}", "^/api/$"]})") ==
        std::vector<std::string>{"^/api/$"});
  CHECK(kept(R"({"allowed_path_regex": ["^/api/a{2,99999}", "^/api/$"]})") ==
        std::vector<std::string>{"^/api/$"});
  CHECK(kept(R"({"allowed_path_regex": ["^/api/a{2,5}$", "^/x\\{9999\\}"]})").size() == 2);
  // A back-reference number is read the same unchecked way (fuzz_options, 2026-11-25).
  CHECK(kept(R"({"allowed_path_regex": ["^/api/(a)\\44444444444444444444", "^/api/$"]})") ==
        std::vector<std::string>{"^/api/$"});
  CHECK(kept(R"({"allowed_path_regex": ["^/api/(a)\\1$", "^/x\\\\4444"]})").size() == 2);
  CHECK(kept(R"({"allowed_path_regex": [")" + std::string(1025, 'a') + R"("]})").empty());
  const std::string deep = "{\"port\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_THROWS_AS(parse_options(deep), OptionsError);
}

TEST_CASE("allowed_path_regex entries std::regex cannot compile are skipped with one warning each",
          "[options]") {
  // 0.4.17 compiled these with JavaScript: lookbehind and named groups are valid there, "(" was
  // not (0.4.17 dropped it silently). The agent keeps the others and names each skipped entry.
  const auto loaded = parse_options(R"({"allowed_path_regex": [
      "(?<=/api/)config$", "^/api/(?<what>states)$", "(", "^/api/$", "(?<!x)/api/template$"]})");
  CHECK(loaded.options.allowed_path_regex == std::vector<std::string>{"^/api/$"});
  REQUIRE(loaded.warnings.size() == 4);
  const std::vector<std::string> skipped = {"\"(?<=/api/)config$\"", "\"^/api/(?<what>states)$\"",
                                            "\"(\"", "\"(?<!x)/api/template$\""};
  const std::vector<std::string> positions = {"entry 1 of 5", "entry 2 of 5", "entry 3 of 5",
                                              "entry 5 of 5"};
  for (std::size_t i = 0; i < skipped.size(); ++i) {
    const std::string& w = loaded.warnings[i];
    INFO(w);
    CHECK(w.find("option 'allowed_path_regex': " + positions[i] + ", " + skipped[i] +
                 ", is skipped (") == 0);
    CHECK(w.find("the other entries still apply") != std::string::npos);
    CHECK(w.find('\n') == std::string::npos);  // one log line
  }
  // The JavaScript-only syntax is named, so the operator knows what to rewrite.
  CHECK(loaded.warnings[0].find("lookbehind") != std::string::npos);
  CHECK(loaded.warnings[1].find("named groups") != std::string::npos);
  CHECK(loaded.warnings[2].find("lookbehind") == std::string::npos);

  // Parsing what the agent runs with again gives the same list and no warning.
  const auto again = parse_options(options_as_json(loaded.options).dump());
  CHECK(again.options.allowed_path_regex == loaded.options.allowed_path_regex);
  CHECK(again.warnings.empty());
}

TEST_CASE("allowed_path_regex: nothing usable is one more warning, an empty list is not",
          "[options]") {
  const auto none = parse_options(R"({"allowed_path_regex": ["(", "(?<=a)b"]})");
  CHECK(none.options.allowed_path_regex.empty());
  REQUIRE(none.warnings.size() == 3);
  CHECK(none.warnings[2].find("no entry is usable") != std::string::npos);
  const auto empty = parse_options(R"({"allowed_path_regex": []})");
  CHECK(empty.options.allowed_path_regex.empty());
  CHECK(empty.warnings.empty());
}

TEST_CASE("an absolute platform_token_state_endpoint is refused with a canary, kept without",
          "[options]") {
  auto message = [](const std::string& json) {
    try {
      parse_options(json);
    } catch (const OptionsError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string absolute = "https://app.dinodiasmartliving.com/api/hub-agent/token-state";
  // Without a canary (every 0.4.17 home): kept exactly as configured.
  const auto alone =
      parse_options(R"({"platform_token_state_endpoint": ")" + absolute + R"("})").options;
  CHECK(alone.platform_token_state_endpoint == absolute);
  // With one: one line naming both options.
  const std::string both = R"({"platform_token_state_endpoint": ")" + absolute +
                           R"(", "platform_canary_base_url": "https://api-origin.example"})";
  const std::string line = message(both);
  CHECK(line.find("option 'platform_token_state_endpoint': value \"" + absolute + "\"") == 0);
  CHECK(line.find("'platform_canary_base_url'") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);
  // Any reference that names a host counts: network-path, or the canary's own host (which would
  // take the primary's calls).
  CHECK(message(R"({"platform_token_state_endpoint": "//other.example/ts",
      "platform_canary_base_url": "https://canary.example"})") != "no error");
  CHECK(message(R"({"platform_token_state_endpoint": "https://canary.example/ts",
      "platform_canary_base_url": "https://canary.example"})") != "no error");
  // Paths (absolute or relative), queries and the default go to each origin: accepted.
  for (const char* endpoint : {"/api/hub-agent/token-state", "api/ts", "?v=2", "", "  "}) {
    INFO(endpoint);
    CHECK(message(std::string(R"({"platform_token_state_endpoint": ")") + endpoint +
                  R"(", "platform_canary_base_url": "https://canary.example"})") == "no error");
  }
  // A canary equal to the primary is still a canary option: refused the same way.
  CHECK(message(R"({"platform_token_state_endpoint": "https://x.example/ts",
      "platform_canary_base_url": "https://app.dinodiasmartliving.com"})") != "no error");
}
