// addon/config.yaml and addon/translations/en.yaml against the agent's option table
// (agent/options.cpp) and against the legacy add-on 0.4.17 (docs/compatibility.md#addon, #options,
// typed in below as the independent oracle), plus the add-on linter's rules.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "agent/options.hpp"
#include "tests/support/process.hpp"
#include "tests/support/yaml_subset.hpp"

namespace {

using dinodia::agent::option_specs;
using dinodia::agent::options_as_json;
using dinodia::agent::OptionSpec;
using dinodia::agent::parse_options;
using dinodia::testing::load_yaml_subset;
using dinodia::testing::parse_yaml_subset;
using dinodia::testing::YamlSubsetError;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The add-on folder under test: addon/ in the repository, or the folder scripts/stage-addon.sh
// wrote when DINODIA_ADDON_DIR names it (the CTest entry addon/staged), so the published folder
// itself passes every rule below.
std::string addon_dir() {
  const char* staged = std::getenv("DINODIA_ADDON_DIR");
  return staged != nullptr ? std::string(staged) : dinodia::testing::source_dir() + "/addon";
}
bool testing_staged_folder() {
  return std::getenv("DINODIA_ADDON_DIR") != nullptr;
}

std::string addon_file(const std::string& name) {
  return addon_dir() + "/" + name;
}

const OrderedJson& config() {
  static const OrderedJson c = load_yaml_subset(addon_file("config.yaml"));
  return c;
}

// v0.4.17: name, schema type, config.yaml default. Lists of `str?` are
// written "[str?]", the agent's notation for a YAML list holding one `str?`.
struct LegacyOption {
  const char* name;
  const char* schema;
  const char* default_json;
};
const std::vector<LegacyOption> kLegacy = {
    {"port", "int(1,65535)", "8099"},
    {"hub_tokens", "[str?]", "[]"},
    {"hub_token_hashes", "[str?]", "[]"},
    {"ws_auth_mode", "list(supervisor|ha|auto)", R"("supervisor")"},
    {"ha_access_token", "str?", R"("")"},
    {"allowed_path_regex", "[str?]",
     R"json(["^/api/?$", "^/api/states($|/.*)", "^/api/services/.*", "^/api/template$",
        "^/api/config.*", "^/api/camera_proxy/.*", "^/api/websocket$"])json"},
    {"log_level", "list(trace|debug|info|warn|error)", R"("info")"},
    {"platform_sync_enabled", "bool", "false"},
    {"platform_base_url", "str?", R"("https://app.dinodiasmartliving.com")"},
    {"platform_token_state_endpoint", "str?", R"("/api/hub-agent/token-state")"},
    {"platform_sync_interval_minutes", "int(2,1440)", "2"},
    {"ha_area_snapshot_refresh_minutes", "int(1,1440)", "10"},
    {"sync_status_token", "str?", R"("")"},
    {"hub_agent_id", "str?", R"("")"},
    {"hub_agent_secret", "str?", R"("")"},
    {"heating_usage_tracking_enabled", "bool", "true"},
    {"heating_usage_tracking_labels", "[str?]", R"(["Boiler", "Radiator"])"},
    {"heating_usage_persist_path", "str?", R"("/data/heating_usage_state.json")"},
    {"heating_usage_max_tracked_entities", "int(1,1000)", "200"},
    {"heating_usage_min_process_interval_ms", "int(0,60000)", "1000"},
    {"heating_usage_label_refresh_minutes", "int(1,1440)", "30"},
    {"heating_usage_gap_unknown_after_seconds", "int(0,86400)", "600"},
    {"heating_usage_poll_interval_seconds", "int(60,3600)", "300"},
    {"electric_usage_tracking_enabled", "bool", "true"},
    {"electric_usage_tracking_label", "str?", R"("Light")"},
    {"electric_usage_persist_path", "str?", R"("/data/electric_usage_state.json")"},
    {"electric_usage_max_tracked_entities", "int(1,1000)", "200"},
    {"electric_usage_poll_interval_seconds", "int(60,3600)", "300"},
    {"electric_usage_label_refresh_minutes", "int(1,1440)", "5"},
    {"electric_usage_gap_unknown_after_seconds", "int(0,86400)", "600"},
};

// The Supervisor treats `str?` and a list of `str?` as optional.
bool is_optional(std::string_view schema) {
  return schema.ends_with("?") || schema.ends_with("?]");
}

// config.yaml schema entry in the agent's notation.
std::string schema_string(const OrderedJson& entry) {
  if (entry.is_string()) return entry.get<std::string>();
  REQUIRE(entry.is_array());
  REQUIRE(entry.size() == 1);
  REQUIRE(entry[0].is_string());
  return "[" + entry[0].get<std::string>() + "]";
}

const OptionSpec* find_spec(std::string_view name) {
  for (const auto& spec : option_specs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("config.yaml keeps the legacy identity and declares what the agent needs", "[addon]") {
  const auto& c = config();
  CHECK(c.at("slug") == "dinodia-hub-agent");
  CHECK(c.at("name") == "Dinodia Hub Agent");
  CHECK(c.at("version") == "1.0.0");
  CHECK(c.at("description").get<std::string>().size() > 10);
  CHECK(c.at("startup") == "services");
  CHECK(c.at("homeassistant_api") == true);
  CHECK(c.at("hassio_api") == true);
  CHECK(c.at("ports") == OrderedJson{{"8099/tcp", 8099}});
  CHECK(c.at("ports_description").contains("8099/tcp"));
  std::set<std::string> arch = c.at("arch").get<std::set<std::string>>();
  CHECK(arch == std::set<std::string>{"aarch64", "amd64", "armv7"});
  // s6-svscan is PID 1 (addon/Dockerfile): Docker's own init must not take that place.
  CHECK(c.at("init") == false);
  // Homes download a prebuilt image per architecture; they never compile the agent.
  CHECK(c.at("image") == "ghcr.io/nivedit1998/{arch}-dinodia-hub-agent");
  CHECK_FALSE(c.contains("ingress"));
  CHECK_FALSE(c.contains("host_network"));
}

TEST_CASE("config.yaml has nothing the add-on linter flags", "[addon]") {
  const auto& c = config();
  CHECK_FALSE(c.contains("watchdog"));
  CHECK_FALSE(c.contains("auto_uart"));
  CHECK_FALSE(c.contains("codenotary"));
  // "'<key>' should be removed, it uses a default value" (frenck/action-addon-linter).
  const std::vector<std::pair<std::string, OrderedJson>> defaults = {
      {"advanced", false},
      {"apparmor", true},
      {"audio", false},
      {"auth_api", false},
      {"backup", "hot"},
      {"boot", "auto"},
      {"devicetree", false},
      {"docker_api", false},
      {"full_access", false},
      {"gpio", false},
      {"hassio_api", false},
      {"hassio_role", "default"},
      {"homeassistant_api", false},
      {"host_dbus", false},
      {"host_ipc", false},
      {"host_network", false},
      {"host_pid", false},
      {"host_uts", false},
      {"ingress", false},
      {"ingress_port", 8099},
      {"init", true},
      {"journald", false},
      {"kernel_modules", false},
      {"legacy", false},
      {"panel_admin", true},
      {"panel_icon", "mdi:puzzle"},
      {"realtime", false},
      {"stage", "stable"},
      {"startup", "application"},
      {"stdin", false},
      {"timeout", 10},
      {"tmpfs", false},
      {"uart", false},
      {"udev", false},
      {"usb", false},
      {"video", false},
      {"options", OrderedJson::object()},
      {"schema", OrderedJson::object()},
  };
  for (const auto& [key, value] : defaults) {
    INFO(key);
    if (c.contains(key)) CHECK(c.at(key) != value);
  }
  // Required keys.
  for (const char* key : {"name", "version", "slug", "description", "arch"}) {
    INFO(key);
    CHECK(c.contains(key));
  }
  // build.yaml is retired; the Dockerfile carries the base image and labels.
  CHECK_FALSE(dinodia::testing::file_exists(addon_file("build.yaml")));
}

TEST_CASE("config.yaml's schema is exactly the agent's option table", "[addon]") {
  const auto& schema = config().at("schema");
  for (const auto& [name, entry] : schema.items()) {
    INFO("schema option " << name);
    const OptionSpec* spec = find_spec(name);
    REQUIRE(spec != nullptr);
    CHECK(schema_string(entry) == spec->schema);
  }
  for (const auto& spec : option_specs()) {
    INFO("agent option " << spec.name);
    CHECK(schema.contains(std::string(spec.name)));
  }
  CHECK(schema.size() == option_specs().size());
}

TEST_CASE("config.yaml's options hold the agent's default for every required option", "[addon]") {
  const auto& options = config().at("options");
  const auto& schema = config().at("schema");
  for (const auto& [name, value] : options.items()) {
    INFO("options entry " << name);
    REQUIRE(schema.contains(name));
    const OptionSpec* spec = find_spec(name);
    REQUIRE(spec != nullptr);
    CHECK(Json::parse(value.dump()) == Json::parse(spec->default_json));
  }
  for (const auto& spec : option_specs()) {
    INFO("agent option " << spec.name << " " << spec.schema);
    // A required option without a value would make the Supervisor refuse to start the add-on;
    // an optional one must have none (the add-on rules): the agent supplies its default.
    CHECK(options.contains(std::string(spec.name)) == !is_optional(spec.schema));
  }
}

TEST_CASE("every legacy option keeps its name, type and default", "[addon]") {
  const auto& schema = config().at("schema");
  std::set<std::string> legacy_names;
  for (const auto& legacy : kLegacy) {
    INFO("legacy option " << legacy.name);
    legacy_names.insert(legacy.name);
    REQUIRE(schema.contains(legacy.name));
    CHECK(schema_string(schema.at(legacy.name)) == legacy.schema);
    const OptionSpec* spec = find_spec(legacy.name);
    REQUIRE(spec != nullptr);
    CHECK(spec->legacy);
    CHECK(Json::parse(spec->default_json) == Json::parse(legacy.default_json));
  }
  for (const auto& spec : option_specs()) {
    INFO("agent option " << spec.name);
    CHECK(spec.legacy == (legacy_names.count(std::string(spec.name)) == 1));
  }
}

TEST_CASE("a fresh install runs with the legacy defaults", "[addon]") {
  // The Supervisor writes options.json from config.yaml's `options` (optional keys absent).
  auto loaded = parse_options(config().at("options").dump());
  CHECK(loaded.warnings.empty());
  Json got = options_as_json(loaded.options);
  for (const auto& legacy : kLegacy) {
    INFO("legacy option " << legacy.name);
    CHECK(got.at(legacy.name) == Json::parse(legacy.default_json));
  }
  CHECK(got.at("platform_canary_base_url") == "");
  CHECK(got.at("max_request_body_mb") == 16);
  CHECK(got.at("allow_hassio_domain") == false);
  CHECK(got.size() == option_specs().size());
}

TEST_CASE("an upgraded home's saved legacy options load unchanged", "[addon]") {
  // What a 0.4.17 install (begun on 0.2.x, so interval 60) has in /data/options.json.
  Json saved = Json::object();
  for (const auto& legacy : kLegacy) saved[legacy.name] = Json::parse(legacy.default_json);
  saved["platform_sync_interval_minutes"] = 60;
  saved["platform_sync_enabled"] = true;
  saved["hub_agent_id"] = "DIN-GB-00042";
  saved["hub_token_hashes"] = {std::string(64, 'a')};
  saved["ws_auth_mode"] = "auto";
  auto loaded = parse_options(saved.dump());
  CHECK(loaded.warnings.empty());
  Json got = options_as_json(loaded.options);
  for (const auto& [name, value] : saved.items()) {
    INFO(name);
    CHECK(got.at(name) == value);
  }
}

TEST_CASE("every option has an English name and description", "[addon]") {
  auto en = load_yaml_subset(addon_file("translations/en.yaml"));
  const auto& configuration = en.at("configuration");
  for (const auto& spec : option_specs()) {
    INFO("option " << spec.name);
    REQUIRE(configuration.contains(std::string(spec.name)));
    const auto& t = configuration.at(std::string(spec.name));
    REQUIRE(t.contains("name"));
    REQUIRE(t.contains("description"));
    CHECK(t.at("name").is_string());
    CHECK(t.at("description").is_string());
    CHECK_FALSE(t.at("name").get<std::string>().empty());
    CHECK(t.at("description").get<std::string>().size() > 10);
  }
  for (const auto& [name, t] : configuration.items()) {
    INFO("translated option " << name);
    CHECK(find_spec(name) != nullptr);  // no stale entries for options that are gone
  }
  CHECK(en.at("network").contains("8099/tcp"));
}

TEST_CASE("the YAML subset reader reads what the add-on files use", "[addon][yaml]") {
  auto doc = parse_yaml_subset(
      "a: 1 # comment\n"
      "b: \"x: #y\"\n"
      "c: 'it''s'\n"
      "# full-line comment\n"
      "d:\n"
      "  - str?\n"
      "  - \"^/api/?$\"\n"
      "e:\n"
      "  8099/tcp: 8099\n"
      "  f:\n"
      "    g: true\n"
      "h:\n"
      "- -5\n"
      "i: []\n"
      "j: int(1,65535)\n");
  CHECK(doc.at("a") == 1);
  CHECK(doc.at("b") == "x: #y");
  CHECK(doc.at("c") == "it's");
  CHECK(doc.at("d") == OrderedJson{"str?", "^/api/?$"});
  CHECK(doc.at("e").at("8099/tcp") == 8099);
  CHECK(doc.at("e").at("f").at("g") == true);
  CHECK(doc.at("h") == OrderedJson{-5});
  CHECK(doc.at("i") == OrderedJson::array());
  CHECK(doc.at("j") == "int(1,65535)");
}

TEST_CASE("the YAML subset reader fails loudly on what it does not understand", "[addon][yaml]") {
  for (const char* text : {
           "a:\tb\n",                 // tab
           "a: yes\n",                // YAML 1.1 boolean
           "a: null\n",               // null
           "a:\n",                    // key without value
           "a: 1.5\n",                // float
           "a: 0755\n",               // octal in YAML 1.1
           "a: 1.0.0\n",              // version-like plain scalar
           "a: &x b\n",               // anchor
           "a: *x\n",                 // alias
           "a: {b: 1}\n",             // flow mapping
           "a: [1, 2]\n",             // non-empty flow sequence
           "a: |\n  text\n",          // block scalar
           "a: >-\n  text\n",         // folded scalar
           "a: 1\na: 2\n",            // duplicate key
           "a:\n  - b: 1\n",          // mapping in a list
           "a: 1\n  b: 2\n",          // bad indentation
           "---\na: 1\n",             // document marker
           "a: \"unterminated\n",     // unterminated quote
           "a: b: c\n",               // nested mapping on one line
           "a:\n    b: 1\n  c: 2\n",  // dedent to an unknown level
       }) {
    INFO(text);
    CHECK_THROWS_AS(parse_yaml_subset(text), YamlSubsetError);
  }
}

TEST_CASE("the image build copies every module the agent is built from", "[addon]") {
  // A module added to the top-level CMakeLists.txt but not to the Dockerfile's COPY list builds
  // here and breaks only in the image build. scripts/stage-addon.sh stages what the COPY lines
  // name, so the staged folder (addon/staged) then holds every module too.
  const std::string cmake =
      dinodia::testing::read_file(dinodia::testing::source_dir() + "/CMakeLists.txt");
  const std::string dockerfile = dinodia::testing::read_file(addon_file("Dockerfile"));
  std::set<std::string> modules;
  const std::string marker = "add_subdirectory(";
  for (auto pos = cmake.find(marker); pos != std::string::npos; pos = cmake.find(marker, pos + 1)) {
    auto end = cmake.find(')', pos);
    std::string name = cmake.substr(pos + marker.size(), end - pos - marker.size());
    if (name != "tests" && name != "bench" && name != "fuzz") modules.insert(name);
  }
  REQUIRE(modules.count("agent") == 1);
  REQUIRE(modules.count("ha_bridge") == 1);
  modules.insert("cross");  // the toolchain and sysroot recipe of the build stage
  for (const auto& m : modules) {
    INFO("module " << m);
    CHECK(dockerfile.find("COPY " + m + " ./src/" + m) != std::string::npos);
    if (testing_staged_folder()) {
      CHECK((dinodia::testing::file_exists(addon_file(m + "/CMakeLists.txt")) ||
             dinodia::testing::file_exists(addon_file(m + "/toolchain.cmake"))));
    }
  }
}

TEST_CASE("the add-on repository keeps the legacy identity", "[addon]") {
  // docs/compatibility.md#addon: homes update only from the repository they installed 0.4.x from.
  const std::string path =
      testing_staged_folder() ? addon_dir() + "/../repository.yaml" : addon_file("repository.yaml");
  const OrderedJson repository = load_yaml_subset(path);
  CHECK(repository.at("name") == "Dinodia Hub Agent Add-ons");
  CHECK(repository.at("url") == "https://github.com/nivedit1998/dinodia-hub-agent");
  CHECK(repository.at("maintainer") == "Dinodia Smart Living");
  if (testing_staged_folder()) {
    // The staged add-on folder holds what the Supervisor reads, and no repository file.
    for (const char* file : {"config.yaml", "Dockerfile", "DOCS.md", "README.md", "CHANGELOG.md",
                             "apparmor.txt", "translations/en.yaml"}) {
      INFO(file);
      CHECK(dinodia::testing::file_exists(addon_file(file)));
    }
    CHECK_FALSE(dinodia::testing::file_exists(addon_file("repository.yaml")));
  }
}
