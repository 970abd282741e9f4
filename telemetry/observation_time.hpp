#pragma once
// When an observation from Home Assistant happened, for the usage trackers.
#include <cstdint>

#include <nlohmann/json_fwd.hpp>

namespace dinodia::telemetry {

// The first of `primary`, `fallback` that is an ISO 8601 time (an event's time_fired, a state's
// last_updated / last_changed), clamped to now; now when neither is. A clock that runs ahead (or a
// bogus time_fired) must not put lastSeenAt in the future (the platform drops rows more than
// 5 min ahead) or block later observations as "out of order".
std::int64_t observation_time(const nlohmann::json& primary, const nlohmann::json& fallback);

}  // namespace dinodia::telemetry
