#include "agent/options.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/text.hpp"
#include "platform_client/url.hpp"

namespace dinodia::agent {
namespace {
using nlohmann::json;

constexpr std::string_view kDefaultAllowList =
    R"json(["^/api/?$","^/api/states($|/.*)","^/api/services/.*","^/api/template$","^/api/config.*","^/api/camera_proxy/.*","^/api/websocket$"])json";

const std::vector<OptionSpec> kSpecs = {
    {"port", "int(1,65535)", "8099", true},
    {"hub_tokens", "[str?]", "[]", true},
    {"hub_token_hashes", "[str?]", "[]", true},
    {"ws_auth_mode", "list(supervisor|ha|auto)", "\"supervisor\"", true},
    {"ha_access_token", "str?", "\"\"", true},
    {"allowed_path_regex", "[str?]", kDefaultAllowList, true},
    {"log_level", "list(trace|debug|info|warn|error)", "\"info\"", true},
    {"platform_sync_enabled", "bool", "false", true},
    {"platform_base_url", "str?", "\"https://app.dinodiasmartliving.com\"", true},
    {"platform_token_state_endpoint", "str?", "\"/api/hub-agent/token-state\"", true},
    {"platform_sync_interval_minutes", "int(2,1440)", "2", true},
    {"ha_area_snapshot_refresh_minutes", "int(1,1440)", "10", true},
    {"sync_status_token", "str?", "\"\"", true},
    {"hub_agent_id", "str?", "\"\"", true},
    {"hub_agent_secret", "str?", "\"\"", true},
    {"heating_usage_tracking_enabled", "bool", "true", true},
    {"heating_usage_tracking_labels", "[str?]", R"(["Boiler","Radiator"])", true},
    {"heating_usage_persist_path", "str?", "\"/data/heating_usage_state.json\"", true},
    {"heating_usage_max_tracked_entities", "int(1,1000)", "200", true},
    {"heating_usage_min_process_interval_ms", "int(0,60000)", "1000", true},
    {"heating_usage_label_refresh_minutes", "int(1,1440)", "30", true},
    {"heating_usage_gap_unknown_after_seconds", "int(0,86400)", "600", true},
    {"heating_usage_poll_interval_seconds", "int(60,3600)", "300", true},
    {"electric_usage_tracking_enabled", "bool", "true", true},
    {"electric_usage_tracking_label", "str?", "\"Light\"", true},
    {"electric_usage_persist_path", "str?", "\"/data/electric_usage_state.json\"", true},
    {"electric_usage_max_tracked_entities", "int(1,1000)", "200", true},
    {"electric_usage_poll_interval_seconds", "int(60,3600)", "300", true},
    {"electric_usage_label_refresh_minutes", "int(1,1440)", "5", true},
    {"electric_usage_gap_unknown_after_seconds", "int(0,86400)", "600", true},
    // Added by this agent.
    {"platform_canary_base_url", "str?", "\"\"", false},
    {"max_request_body_mb", "int(1,256)", "16", false},
    {"allow_hassio_domain", "bool", "false", false},
    {"kiosk_relief", "bool", "true", false},
    {"kiosk_relief_window_ms", "int(0,10000)", "1000", false},
};

// Options whose values are credentials: an error names the option and the expected type, never
// the value, because the error line goes to the add-on log.
bool is_secret(std::string_view name) {
  return name == "hub_tokens" || name == "hub_token_hashes" || name == "ha_access_token" ||
         name == "sync_status_token" || name == "hub_agent_secret";
}

std::string shown(std::string_view name, const json& v) {
  if (is_secret(name)) return "<hidden>";
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

[[noreturn]] void fail(std::string_view name, const json& value, std::string_view expected) {
  std::ostringstream out;
  out << "option '" << name << "': value " << shown(name, value) << " is invalid, expected "
      << expected;
  throw OptionsError(out.str());
}

// Validates `value` against a schema string and returns it normalised (strings trimmed where
// the legacy agent trims). A JSON null for an optional `str?` means "not set".
json check_value(const OptionSpec& spec, const json& value) {
  std::string_view schema = spec.schema;
  if (schema == "bool") {
    if (!value.is_boolean()) fail(spec.name, value, "true or false");
    return value;
  }
  if (schema.starts_with("int(")) {
    auto comma = schema.find(',');
    long long lo = std::stoll(std::string(schema.substr(4, comma - 4)));
    long long hi = std::stoll(std::string(schema.substr(comma + 1, schema.size() - comma - 2)));
    std::string expected = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    long long n = 0;
    if (value.is_number_integer()) {
      n = value.get<long long>();
    } else if (value.is_number_float()) {
      double d = value.get<double>();
      // Range-check as a double first: converting an out-of-range double is undefined.
      if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) - 1 ||
          d > static_cast<double>(hi) + 1) {
        fail(spec.name, value, expected);
      }
      n = static_cast<long long>(d);
    } else {
      fail(spec.name, value, expected);
    }
    // `port: 0` binds a free port: tests and benchmarks only. The Supervisor's schema keeps
    // int(1,65535), so a home can never be configured with it.
    const bool test_port = spec.name == "port" && n == 0;
    if ((n < lo || n > hi) && !test_port) fail(spec.name, value, expected);
    return json(n);
  }
  if (schema == "str?") {
    if (value.is_null()) return json("");
    if (!value.is_string()) fail(spec.name, value, "a string");
    return value;
  }
  if (schema.starts_with("list(")) {
    std::string choices(schema.substr(5, schema.size() - 6));
    if (!value.is_string()) fail(spec.name, value, "one of " + choices);
    std::string v = value.get<std::string>();
    std::stringstream ss(choices);
    std::string choice;
    while (std::getline(ss, choice, '|')) {
      if (choice == v) return value;
    }
    fail(spec.name, value, "one of " + choices);
  }
  if (schema == "[str?]") {
    if (value.is_null()) return json::array();
    if (!value.is_array()) fail(spec.name, value, "a list of strings");
    json out = json::array();
    for (const auto& item : value) {
      if (item.is_null()) continue;
      if (!item.is_string()) fail(spec.name, value, "a list of strings");
      out.push_back(item);
    }
    return out;
  }
  throw std::logic_error("unknown schema " + std::string(schema));
}

constexpr int kMaxOptionsDepth = 8;
constexpr std::size_t kMaxPatternLength = 1024;
constexpr long kMaxRepetition = 1000;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// True when the run of digits starting at `pos` reads as a number above kMaxRepetition.
bool digits_exceed_limit(std::string_view s, std::size_t pos) {
  long value = 0;
  for (; pos < s.size() && is_digit(s[pos]); ++pos) {
    value = value * 10 + (s[pos] - '0');
    if (value > kMaxRepetition) return true;
  }
  return false;
}

// libstdc++'s regex compiler reads a number into a long without an overflow check (undefined
// behaviour, found by fuzzing) in repetition counts such as a{22222222222222222222} and in
// back-references such as \44444444444444444444; patterns are operator-supplied, but a typo
// must still be reported and skipped rather than crash the agent. Returns a reason, or nullptr
// when the pattern is fine.
const char* unsafe_regex(std::string_view pattern) {
  if (pattern.size() > kMaxPatternLength) return "longer than 1024 characters";
  bool escaped = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (escaped) {
      escaped = false;
      if (is_digit(c) && digits_exceed_limit(pattern, i)) return "a back-reference above 1000";
      continue;
    }
    if (c == '\\') {
      escaped = true;
    } else if (c == '{') {
      // {n}, {n,} or {n,m}: each number is checked where its digits start.
      for (std::size_t j = i + 1; j < pattern.size() && pattern[j] != '}'; ++j) {
        if (pattern[j] == ',') continue;
        if (!is_digit(pattern[j])) break;  // not a {n,m} quantifier
        if (digits_exceed_limit(pattern, j)) return "a repetition count above 1000";
        while (j + 1 < pattern.size() && is_digit(pattern[j + 1])) ++j;
      }
    }
  }
  return nullptr;
}

// Why this agent cannot use an allowed_path_regex entry, or "" when it can.
std::string pattern_problem(const std::string& pattern) {
  if (const char* problem = unsafe_regex(pattern)) return problem;
  try {
    std::regex compiled(pattern, std::regex::ECMAScript);
    (void)compiled;
  } catch (const std::regex_error& e) {
    std::string reason = e.what();
    // std::regex implements the ECMAScript grammar of 1999; lookbehind and named groups came to
    // JavaScript later, so a pattern 0.4.17 (Node) compiled can still fail here.
    if (pattern.find("(?<") != std::string::npos) {
      reason += "; lookbehind (?<= (?<! and named groups (?<name> are not supported";
    }
    return reason;
  }
  return "";
}

// The allowed_path_regex entries the bridge can compile. 0.4.17 dropped an entry JavaScript could
// not compile without a word; this agent drops an entry std::regex cannot compile (which
// includes some valid JavaScript) with one warning each, and keeps going: dropping a pattern
// only narrows what hub-token holders may call, and a home that started on 0.4.17 must start
// here (docs/compatibility.md#options).
std::vector<std::string> usable_patterns(const std::vector<std::string>& patterns,
                                         std::vector<std::string>& warnings) {
  std::vector<std::string> usable;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    const std::string problem = pattern_problem(patterns[i]);
    if (problem.empty()) {
      usable.push_back(patterns[i]);
      continue;
    }
    warnings.push_back("option 'allowed_path_regex': entry " + std::to_string(i + 1) + " of " +
                       std::to_string(patterns.size()) + ", " +
                       shown("allowed_path_regex", json(patterns[i])) + ", is skipped (" + problem +
                       "); the other entries still apply");
  }
  if (usable.empty() && !patterns.empty()) {
    warnings.push_back(
        "option 'allowed_path_regex': no entry is usable, so every Home Assistant API path "
        "gets 403 Path not allowed");
  }
  return usable;
}

// Whether `endpoint`, resolved against `base_url` as the sync resolves it, leaves the base's
// origin: an absolute or network-path reference names a host of its own. False when the base is
// not an http(s) URL or the two do not form one; the sync reports those itself.
bool endpoint_leaves_origin(const std::string& base_url, const std::string& endpoint) {
  if (endpoint.empty()) return false;  // the default path
  const auto base = platform_client::parse_url(base_url);
  if (!base) return false;
  const auto resolved = platform_client::resolve_url(*base, endpoint);
  return resolved && resolved->origin() != base->origin();
}

// 0.4.17 had no canary, so an absolute token-state endpoint always went with the one base URL.
// With a canary the same absolute endpoint would send the canary's token-state calls to the
// endpoint's host (usually the primary) while pairing went to the canary, and nothing would say
// so. Refused at start instead; no home that ran 0.4.17 has a canary to break
// (docs/compatibility.md#options).
void check_endpoint_with_canary(const Options& o) {
  if (o.platform_canary_base_url.empty()) return;
  if (!endpoint_leaves_origin(o.platform_base_url, o.platform_token_state_endpoint) &&
      !endpoint_leaves_origin(o.platform_canary_base_url, o.platform_token_state_endpoint)) {
    return;
  }
  throw OptionsError(
      "option 'platform_token_state_endpoint': value " +
      shown("platform_token_state_endpoint", json(o.platform_token_state_endpoint)) +
      " is invalid while option 'platform_canary_base_url' is set, expected a path such as "
      "/api/hub-agent/token-state (an address with its own host would send the token-state "
      "calls of both origins to that host)");
}

std::vector<std::string> strings(const json& v) {
  return v.get<std::vector<std::string>>();
}
std::string trimmed(const json& v) {
  return std::string(text::trim(v.get<std::string>()));
}

}  // namespace

const std::vector<OptionSpec>& option_specs() {
  return kSpecs;
}

std::vector<std::string> Options::upstream_ws_tokens(const std::string& supervisor_token) const {
  std::vector<std::string> out;
  auto push = [&out](const std::string& t) {
    if (!t.empty()) out.push_back(t);
  };
  if (ws_auth_mode == "supervisor") {
    push(supervisor_token);
  } else if (ws_auth_mode == "ha") {
    push(ha_access_token);
  } else {
    push(supervisor_token);
    push(ha_access_token);
  }
  return out;
}

LoadedOptions parse_options(std::string_view json_text) {
  // The Supervisor writes a flat object; deep nesting is not an options file (and dumping a
  // deeply nested value into an error message would recurse once per level).
  if (!text::json_nesting_within(json_text, kMaxOptionsDepth)) {
    throw OptionsError("options file nests deeper than " + std::to_string(kMaxOptionsDepth) +
                       " levels");
  }
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for numbers like 1e999
    throw OptionsError(std::string("options file is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) throw OptionsError("options file must hold a JSON object");

  LoadedOptions out;
  std::map<std::string, json, std::less<>> values;
  for (const auto& spec : kSpecs) {
    values[std::string(spec.name)] = json::parse(spec.default_json);
  }
  for (const auto& [key, value] : root.items()) {
    const OptionSpec* spec = nullptr;
    for (const auto& s : kSpecs) {
      if (s.name == key) spec = &s;
    }
    if (spec == nullptr) {
      out.warnings.push_back("unknown option '" + key + "' is ignored");
      continue;
    }
    values[key] = check_value(*spec, value);
  }

  Options& o = out.options;
  o.port = values["port"].get<int>();
  o.hub_tokens = strings(values["hub_tokens"]);
  o.hub_token_hashes = strings(values["hub_token_hashes"]);
  o.ws_auth_mode = values["ws_auth_mode"].get<std::string>();
  o.ha_access_token = trimmed(values["ha_access_token"]);
  o.allowed_path_regex = usable_patterns(strings(values["allowed_path_regex"]), out.warnings);
  o.log_level = values["log_level"].get<std::string>();
  o.max_request_body_mb = values["max_request_body_mb"].get<int>();
  o.allow_hassio_domain = values["allow_hassio_domain"].get<bool>();
  o.kiosk_relief = values["kiosk_relief"].get<bool>();
  o.kiosk_relief_window_ms = values["kiosk_relief_window_ms"].get<int>();
  o.platform_sync_enabled = values["platform_sync_enabled"].get<bool>();
  // Trimmed and without trailing slashes, until neither changes anything: " https://h /" is
  // "https://h", and normalising a normalised value leaves it as it is (fuzz_options found
  // "https://h " left behind when the trim ran only first).
  auto base_url = [](const json& v) {
    std::string s = trimmed(v);
    for (std::size_t before = std::string::npos; s.size() != before;) {
      before = s.size();
      while (!s.empty() && s.back() == '/') s.pop_back();
      s = std::string(text::trim(s));
    }
    return s;
  };
  o.platform_base_url = base_url(values["platform_base_url"]);
  o.platform_canary_base_url = base_url(values["platform_canary_base_url"]);
  o.platform_token_state_endpoint = trimmed(values["platform_token_state_endpoint"]);
  o.platform_sync_interval_minutes = values["platform_sync_interval_minutes"].get<int>();
  o.ha_area_snapshot_refresh_minutes = values["ha_area_snapshot_refresh_minutes"].get<int>();
  o.sync_status_token = trimmed(values["sync_status_token"]);
  o.hub_agent_id = trimmed(values["hub_agent_id"]);
  o.hub_agent_secret = trimmed(values["hub_agent_secret"]);
  o.heating_usage_tracking_enabled = values["heating_usage_tracking_enabled"].get<bool>();
  o.heating_usage_tracking_labels = strings(values["heating_usage_tracking_labels"]);
  o.heating_usage_persist_path = trimmed(values["heating_usage_persist_path"]);
  o.heating_usage_max_tracked_entities = values["heating_usage_max_tracked_entities"].get<int>();
  o.heating_usage_min_process_interval_ms =
      values["heating_usage_min_process_interval_ms"].get<int>();
  o.heating_usage_label_refresh_minutes = values["heating_usage_label_refresh_minutes"].get<int>();
  o.heating_usage_gap_unknown_after_seconds =
      values["heating_usage_gap_unknown_after_seconds"].get<int>();
  o.heating_usage_poll_interval_seconds = values["heating_usage_poll_interval_seconds"].get<int>();
  o.electric_usage_tracking_enabled = values["electric_usage_tracking_enabled"].get<bool>();
  o.electric_usage_tracking_label = trimmed(values["electric_usage_tracking_label"]);
  if (o.electric_usage_tracking_label.empty()) o.electric_usage_tracking_label = "Light";
  o.electric_usage_persist_path = trimmed(values["electric_usage_persist_path"]);
  o.electric_usage_max_tracked_entities = values["electric_usage_max_tracked_entities"].get<int>();
  o.electric_usage_poll_interval_seconds =
      values["electric_usage_poll_interval_seconds"].get<int>();
  o.electric_usage_label_refresh_minutes =
      values["electric_usage_label_refresh_minutes"].get<int>();
  o.electric_usage_gap_unknown_after_seconds =
      values["electric_usage_gap_unknown_after_seconds"].get<int>();
  check_endpoint_with_canary(o);
  return out;
}

json options_as_json(const Options& o) {
  return {
      {"port", o.port},
      {"hub_tokens", o.hub_tokens},
      {"hub_token_hashes", o.hub_token_hashes},
      {"ws_auth_mode", o.ws_auth_mode},
      {"ha_access_token", o.ha_access_token},
      {"allowed_path_regex", o.allowed_path_regex},
      {"log_level", o.log_level},
      {"max_request_body_mb", o.max_request_body_mb},
      {"allow_hassio_domain", o.allow_hassio_domain},
      {"kiosk_relief", o.kiosk_relief},
      {"kiosk_relief_window_ms", o.kiosk_relief_window_ms},
      {"platform_sync_enabled", o.platform_sync_enabled},
      {"platform_base_url", o.platform_base_url},
      {"platform_canary_base_url", o.platform_canary_base_url},
      {"platform_token_state_endpoint", o.platform_token_state_endpoint},
      {"platform_sync_interval_minutes", o.platform_sync_interval_minutes},
      {"ha_area_snapshot_refresh_minutes", o.ha_area_snapshot_refresh_minutes},
      {"sync_status_token", o.sync_status_token},
      {"hub_agent_id", o.hub_agent_id},
      {"hub_agent_secret", o.hub_agent_secret},
      {"heating_usage_tracking_enabled", o.heating_usage_tracking_enabled},
      {"heating_usage_tracking_labels", o.heating_usage_tracking_labels},
      {"heating_usage_persist_path", o.heating_usage_persist_path},
      {"heating_usage_max_tracked_entities", o.heating_usage_max_tracked_entities},
      {"heating_usage_min_process_interval_ms", o.heating_usage_min_process_interval_ms},
      {"heating_usage_label_refresh_minutes", o.heating_usage_label_refresh_minutes},
      {"heating_usage_gap_unknown_after_seconds", o.heating_usage_gap_unknown_after_seconds},
      {"heating_usage_poll_interval_seconds", o.heating_usage_poll_interval_seconds},
      {"electric_usage_tracking_enabled", o.electric_usage_tracking_enabled},
      {"electric_usage_tracking_label", o.electric_usage_tracking_label},
      {"electric_usage_persist_path", o.electric_usage_persist_path},
      {"electric_usage_max_tracked_entities", o.electric_usage_max_tracked_entities},
      {"electric_usage_poll_interval_seconds", o.electric_usage_poll_interval_seconds},
      {"electric_usage_label_refresh_minutes", o.electric_usage_label_refresh_minutes},
      {"electric_usage_gap_unknown_after_seconds", o.electric_usage_gap_unknown_after_seconds},
  };
}

LoadedOptions load_options_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadedOptions out = parse_options("{}");
    out.warnings.push_back("options file " + path + " not found; using defaults");
    return out;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw OptionsError("options file " + path + " could not be read");
  return parse_options(buf.str());
}

}  // namespace dinodia::agent
