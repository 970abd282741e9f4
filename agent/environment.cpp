#include "agent/environment.hpp"

#include <cstdlib>
#include <stdexcept>

#include "common/text.hpp"

namespace dinodia::agent {
namespace {
std::optional<std::string> get(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}
}  // namespace

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
  return env;
}

}  // namespace dinodia::agent
