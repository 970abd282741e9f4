#include "agent/environment.hpp"

#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string_view>

#include "common/text.hpp"

namespace dinodia::agent {
namespace {
std::optional<std::string> get(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// A whole number of seconds from 1 to 86400; unset (or empty) gives nullopt. Anything else is an
// error naming the variable, never a silent 0.
std::optional<int> seconds(const char* name) {
  const auto v = get(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0' || n < 1 || n > 86400) {
    throw std::invalid_argument(std::string(name) + ": value '" + *v +
                                "' is invalid, expected an integer from 1 to 86400");
  }
  return static_cast<int>(n);
}

[[noreturn]] void bad_pairs(const char* variable, const char* expected, const std::string& what) {
  throw std::invalid_argument(std::string(variable) + ": " + what + " (" + expected + ")");
}

struct PairSlot {
  const char* key;
  std::optional<int>* slot;
};

// "key=number,key=number": any subset of `slots`, any order, each number from `min` to `max`.
void parse_pairs(const char* variable, const char* expected, const char* unit,
                 const std::string& value, std::initializer_list<PairSlot> slots, long min,
                 long max) {
  std::string_view rest = value;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = text::trim(rest.substr(0, comma));
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      // Appended piece by piece: GCC 12 reports a false -Wrestrict for `"'" + std::string` here.
      std::string message = "'";
      message.append(item).append("' is not key=").append(unit);
      bad_pairs(variable, expected, message);
    }
    const std::string key(text::trim(item.substr(0, eq)));
    const std::string number(text::trim(item.substr(eq + 1)));
    std::optional<int>* slot = nullptr;
    for (const auto& candidate : slots) {
      if (key == candidate.key) slot = candidate.slot;
    }
    if (slot == nullptr) bad_pairs(variable, expected, "unknown key '" + key + "'");
    if (slot->has_value()) bad_pairs(variable, expected, "key '" + key + "' given twice");
    char* end = nullptr;
    const long n = std::strtol(number.c_str(), &end, 10);
    if (number.empty() || end != number.c_str() + number.size() || n < min || n > max) {
      // NOLINTNEXTLINE(performance-inefficient-string-concatenation): runs once, then throws
      bad_pairs(variable, expected, "value '" + number + "' for key '" + key + "' is invalid");
    }
    *slot = static_cast<int>(n);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
}
}  // namespace

BridgeTimeoutOverrides parse_bridge_timeouts(const std::string& value) {
  BridgeTimeoutOverrides out;
  parse_pairs("DINODIA_BRIDGE_TIMEOUTS",
              "expected key=seconds pairs separated by commas, keys idle, header, io, ws_auth, "
              "ws_ping, unauth_idle, seconds from 1 to 3600",
              "seconds", value,
              {{"idle", &out.idle},
               {"header", &out.header},
               {"io", &out.io},
               {"ws_auth", &out.ws_auth},
               {"ws_ping", &out.ws_ping},
               {"unauth_idle", &out.unauth_idle}},
              1, 3600);
  return out;
}

BridgeLimitOverrides parse_bridge_limits(const std::string& value) {
  BridgeLimitOverrides out;
  parse_pairs("DINODIA_BRIDGE_LIMITS",
              "expected key=number pairs separated by commas, keys connections, per_address, "
              "numbers from 1 to 1000000",
              "number", value,
              {{"connections", &out.connections}, {"per_address", &out.per_address}}, 1, 1000000);
  return out;
}

Environment read_environment() {
  Environment env;
  if (auto v = get("DINODIA_OPTIONS_PATH")) env.options_path = *v;
  if (auto v = get("DINODIA_DATA_DIR")) env.data_dir = *v;
  if (auto v = get("DINODIA_SUPERVISOR_URL")) env.supervisor_url = *v;
  if (auto v = get("SUPERVISOR_TOKEN")) {
    env.supervisor_token = std::string(text::trim(*v));
  } else if (auto old = get("HASSIO_TOKEN")) {
    env.supervisor_token = std::string(text::trim(*old));
  }
  env.sync_interval_seconds = seconds("DINODIA_SYNC_INTERVAL_SECONDS");
  env.telemetry_poll_seconds = seconds("DINODIA_TELEMETRY_POLL_SECONDS");
  env.doctor_report_seconds = seconds("DINODIA_DOCTOR_REPORT_SECONDS");
  env.settle_seconds = seconds("DINODIA_SETTLE_SECONDS");
  env.token_state_path = get("DINODIA_TOKEN_STATE_PATH");
  env.heating_usage_state_path = get("DINODIA_HEATING_USAGE_STATE_PATH");
  env.electric_usage_state_path = get("DINODIA_ELECTRIC_USAGE_STATE_PATH");
  if (auto v = get("DINODIA_BIND_ADDRESS")) env.bind_address = *v;
  if (auto v = get("DINODIA_BRIDGE_TIMEOUTS")) env.bridge_timeouts = parse_bridge_timeouts(*v);
  if (auto v = get("DINODIA_BRIDGE_LIMITS")) env.bridge_limits = parse_bridge_limits(*v);
  env.glibc_tunables = get("GLIBC_TUNABLES");
  env.preloaded = get("LD_PRELOAD").has_value();
  return env;
}

}  // namespace dinodia::agent
