// Fuzzes agent::parse_options (the add-on options file). Invariants: the parser returns or
// throws OptionsError with a one-line message, nothing else; every accepted value is within
// its schema; and the result is a fixed point: serialising the parsed options back to JSON and
// parsing them again gives the same options.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "agent/options.hpp"
#include "common/text.hpp"
#include "fuzz/fuzz_check.hpp"
#include "ha_bridge/path_policy.hpp"

namespace {

using dinodia::agent::Options;
using dinodia::agent::options_as_json;
using nlohmann::json;

bool in_range(int v, int lo, int hi) {
  return v >= lo && v <= hi;
}
bool is_trimmed(const std::string& s) {
  return dinodia::text::trim(s).size() == s.size();
}

void check_invariants(const Options& o) {
  // 0 is accepted on purpose: tests bind a free port (agent/options.cpp).
  FUZZ_CHECK(in_range(o.port, 0, 65535), "port in range");
  FUZZ_CHECK(in_range(o.max_request_body_mb, 1, 256), "max_request_body_mb in range");
  FUZZ_CHECK(in_range(o.platform_sync_interval_minutes, 2, 1440), "sync interval in range");
  FUZZ_CHECK(in_range(o.ha_area_snapshot_refresh_minutes, 1, 1440), "area refresh in range");
  FUZZ_CHECK(in_range(o.heating_usage_max_tracked_entities, 1, 1000), "heating max entities");
  FUZZ_CHECK(in_range(o.heating_usage_min_process_interval_ms, 0, 60000), "heating interval");
  FUZZ_CHECK(in_range(o.heating_usage_label_refresh_minutes, 1, 1440), "heating label refresh");
  FUZZ_CHECK(in_range(o.heating_usage_gap_unknown_after_seconds, 0, 86400), "heating gap");
  FUZZ_CHECK(in_range(o.heating_usage_poll_interval_seconds, 60, 3600), "heating poll");
  FUZZ_CHECK(in_range(o.electric_usage_max_tracked_entities, 1, 1000), "electric max entities");
  FUZZ_CHECK(in_range(o.electric_usage_poll_interval_seconds, 60, 3600), "electric poll");
  FUZZ_CHECK(in_range(o.electric_usage_label_refresh_minutes, 1, 1440), "electric label refresh");
  FUZZ_CHECK(in_range(o.electric_usage_gap_unknown_after_seconds, 0, 86400), "electric gap");
  static const std::set<std::string> kModes = {"supervisor", "ha", "auto"};
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  FUZZ_CHECK(kModes.count(o.ws_auth_mode) == 1, "ws_auth_mode valid");
  FUZZ_CHECK(kLevels.count(o.log_level) == 1, "log_level valid");
  FUZZ_CHECK(is_trimmed(o.ha_access_token) && is_trimmed(o.sync_status_token) &&
                 is_trimmed(o.hub_agent_id) && is_trimmed(o.hub_agent_secret) &&
                 is_trimmed(o.platform_token_state_endpoint),
             "secrets and ids are trimmed");
  FUZZ_CHECK(o.platform_base_url.empty() || o.platform_base_url.back() != '/',
             "base url has no trailing slash");
  FUZZ_CHECK(!o.electric_usage_tracking_label.empty(), "electric label defaults to Light");
  // The loader promised every pattern compiles: the bridge must be able to build its list.
  try {
    dinodia::ha_bridge::AllowList list(o.allowed_path_regex);
    (void)list;
  } catch (const std::exception&) {
    FUZZ_CHECK(false, "accepted allowed_path_regex compiles");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dinodia::agent::LoadedOptions loaded;
  try {
    loaded = dinodia::agent::parse_options(text);
  } catch (const dinodia::agent::OptionsError& e) {
    const std::string_view message = e.what();
    FUZZ_CHECK(!message.empty(), "error message is not empty");
    FUZZ_CHECK(message.starts_with("option"), "error message names the option or the file");
    return 0;
  } catch (...) {
    FUZZ_CHECK(false, "parse_options throws only OptionsError");
  }
  check_invariants(loaded.options);

  const json first = options_as_json(loaded.options);
  dinodia::agent::LoadedOptions again;
  try {
    again = dinodia::agent::parse_options(first.dump());
  } catch (...) {
    FUZZ_CHECK(false, "re-parsing accepted options succeeds");
  }
  FUZZ_CHECK(again.warnings.empty(), "serialised options have no unknown keys");
  FUZZ_CHECK(options_as_json(again.options) == first, "parse(serialise(parse(x))) == parse(x)");
  return 0;
}
