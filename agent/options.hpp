#pragma once
// Add-on options (/data/options.json, env DINODIA_OPTIONS_PATH). Every legacy option keeps its
// legacy name, schema type and config.yaml default (docs/compatibility.md#options); the agent's
// in-code defaults are the config.yaml ones, because that is what a real install runs with.
//
// Unlike the legacy agent (which shallow-merged whatever it found), values are validated: a
// wrong type or range is an OptionsError naming the option, the value and what is expected,
// and start-up stops. Unknown keys are warnings, and so are allowed_path_regex entries the
// agent cannot compile: those are skipped, as 0.4.17 skipped the ones it could not compile
// (docs/compatibility.md#options).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::agent {

// One row of the option table: the single source of truth for names, Supervisor schema types
// and defaults. `schema` uses the Supervisor's syntax: bool, int(a,b), str?, list(a|b), and a
// list of str? is written "[str?]". `default_json` is the config.yaml default as JSON text.
struct OptionSpec {
  std::string_view name;
  std::string_view schema;
  std::string_view default_json;
  bool legacy;  // present in the legacy add-on v0.4.17
};
const std::vector<OptionSpec>& option_specs();

struct Options {
  // LAN bridge
  int port = 8099;
  std::vector<std::string> hub_tokens;
  std::vector<std::string> hub_token_hashes;
  std::string ws_auth_mode = "supervisor";  // supervisor | ha | auto
  std::string ha_access_token;
  std::vector<std::string> allowed_path_regex;  // only the entries that compile
  std::string log_level = "info";
  int max_request_body_mb = 16;
  bool allow_hassio_domain = false;  // hub-token holders may call `hassio` services
  // Kiosk-load relief (docs/lan-bridge.md#kiosk-relief): identical reads in flight joined, and
  // answers at most this many ms old served from memory (0: joining only).
  bool kiosk_relief = true;
  int kiosk_relief_window_ms = 1000;
  // Platform sync
  bool platform_sync_enabled = false;
  std::string platform_base_url;
  std::string platform_canary_base_url;
  std::string platform_token_state_endpoint;
  int platform_sync_interval_minutes = 2;
  int ha_area_snapshot_refresh_minutes = 10;
  std::string sync_status_token;
  std::string hub_agent_id;
  std::string hub_agent_secret;
  // Heating usage
  bool heating_usage_tracking_enabled = true;
  std::vector<std::string> heating_usage_tracking_labels;
  std::string heating_usage_persist_path;
  int heating_usage_max_tracked_entities = 200;
  int heating_usage_min_process_interval_ms = 1000;
  int heating_usage_label_refresh_minutes = 30;
  int heating_usage_gap_unknown_after_seconds = 600;
  int heating_usage_poll_interval_seconds = 300;
  // Electric usage
  bool electric_usage_tracking_enabled = true;
  std::string electric_usage_tracking_label;
  std::string electric_usage_persist_path;
  int electric_usage_max_tracked_entities = 200;
  int electric_usage_poll_interval_seconds = 300;
  int electric_usage_label_refresh_minutes = 5;
  int electric_usage_gap_unknown_after_seconds = 600;

  // Upstream WebSocket credentials in the order ws_auth_mode prescribes
  // (docs/compatibility.md#options), empty entries removed. Needs the Supervisor token from the
  // environment.
  std::vector<std::string> upstream_ws_tokens(const std::string& supervisor_token) const;
};

class OptionsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedOptions {
  Options options;
  std::vector<std::string> warnings;  // unknown keys, missing file, ...
};

// Parses options JSON text. Throws OptionsError with one line such as
//   option 'port': value 70000 is out of range, expected an integer from 1 to 65535
LoadedOptions parse_options(std::string_view json_text);
// What the agent runs with, every option under its name (the shape of options.json).
nlohmann::json options_as_json(const Options& options);
// Reads and parses the file. A missing file gives the defaults plus a warning (local runs);
// a file that exists but cannot be read or parsed is an OptionsError.
LoadedOptions load_options_file(const std::string& path);

}  // namespace dinodia::agent
