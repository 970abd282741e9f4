#include "agent/environment.hpp"

#include <cstdlib>
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

[[noreturn]] void bad_timeouts(const std::string& what) {
  throw std::invalid_argument(
      "DINODIA_BRIDGE_TIMEOUTS: " + what +
      " (expected key=seconds pairs separated by commas, keys idle, header, io, ws_auth, "
      "ws_ping, seconds from 1 to 3600)");
}
}  // namespace

BridgeTimeoutOverrides parse_bridge_timeouts(const std::string& value) {
  BridgeTimeoutOverrides out;
  std::string_view rest = value;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = text::trim(rest.substr(0, comma));
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      // Appended piece by piece: GCC 12 reports a false -Wrestrict for `"'" + std::string` here.
      std::string message = "'";
      message.append(item).append("' is not key=seconds");
      bad_timeouts(message);
    }
    const std::string key(text::trim(item.substr(0, eq)));
    const std::string number(text::trim(item.substr(eq + 1)));
    std::optional<int>* slot = nullptr;
    if (key == "idle") {
      slot = &out.idle;
    } else if (key == "header") {
      slot = &out.header;
    } else if (key == "io") {
      slot = &out.io;
    } else if (key == "ws_auth") {
      slot = &out.ws_auth;
    } else if (key == "ws_ping") {
      slot = &out.ws_ping;
    } else {
      bad_timeouts("unknown key '" + key + "'");
    }
    if (slot->has_value()) bad_timeouts("key '" + key + "' given twice");
    char* end = nullptr;
    const long n = std::strtol(number.c_str(), &end, 10);
    if (number.empty() || end != number.c_str() + number.size() || n < 1 || n > 3600) {
      // NOLINTNEXTLINE(performance-inefficient-string-concatenation): runs once, then throws
      bad_timeouts("value '" + number + "' for key '" + key + "' is invalid");
    }
    *slot = static_cast<int>(n);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
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
  if (auto v = get("DINODIA_SYNC_INTERVAL_SECONDS")) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0' || n < 1 || n > 86400) {
      throw std::invalid_argument("DINODIA_SYNC_INTERVAL_SECONDS: value '" + *v +
                                  "' is invalid, expected an integer from 1 to 86400");
    }
    env.sync_interval_seconds = static_cast<int>(n);
  }
  if (auto v = get("DINODIA_BIND_ADDRESS")) env.bind_address = *v;
  if (auto v = get("DINODIA_BRIDGE_TIMEOUTS")) env.bridge_timeouts = parse_bridge_timeouts(*v);
  return env;
}

}  // namespace dinodia::agent
