#include "telemetry/observation_time.hpp"

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"

namespace dinodia::telemetry {

std::int64_t observation_time(const nlohmann::json& primary, const nlohmann::json& fallback) {
  const std::int64_t now = clock::unix_millis();
  for (const nlohmann::json* v : {&primary, &fallback}) {
    if (v->is_string()) {
      if (auto t = clock::parse_iso8601_millis(v->get<std::string>())) return std::min(*t, now);
    }
  }
  return now;
}

}  // namespace dinodia::telemetry
