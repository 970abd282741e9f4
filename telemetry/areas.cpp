#include "telemetry/areas.hpp"

#include <cmath>
#include <set>

#include "common/clock.hpp"
#include "common/text.hpp"

namespace dinodia::telemetry {

using Json = nlohmann::json;

std::optional<Json> transform_area_registry(const Json& result) {
  if (!result.is_array()) return std::nullopt;
  Json areas = Json::array();
  std::set<std::string> seen;
  std::size_t index = 0;
  for (const auto& row : result) {
    if (index++ >= 500) break;
    if (!row.is_object()) continue;
    auto n = row.find("name");
    if (n == row.end() || !n->is_string()) continue;
    auto name = text::trim(n->get_ref<const std::string&>());
    if (name.empty() || !seen.insert(text::lower(name)).second) continue;
    Json out = Json::object();
    if (auto a = row.find("area_id"); a != row.end() && a->is_string()) {
      auto id = text::trim(a->get_ref<const std::string&>());
      if (!id.empty()) out["areaId"] = std::string(id);
    }
    out["name"] = std::string(name);
    areas.push_back(std::move(out));
  }
  if (areas.empty() && !result.empty()) return std::nullopt;
  return areas;
}

AreaSnapshots::AreaSnapshots(double refresh_minutes) {
  double m = std::isfinite(refresh_minutes) ? std::floor(refresh_minutes) : 0;
  if (m <= 0) m = 10;
  refresh_ms_ = static_cast<std::int64_t>(m) * 60'000;
}

bool AreaSnapshots::fetch_due(std::int64_t now) const {
  return !last_attempt_ || now - *last_attempt_ >= refresh_ms_ || now < *last_attempt_;
}

bool AreaSnapshots::on_fetched(const Json& result, std::int64_t now) {
  last_attempt_ = now;
  auto areas = transform_area_registry(result);
  if (!areas) return false;
  unsent_ = Json{{"schemaVersion", 1},
                 {"capturedAt", clock::iso8601_from_millis(now)},
                 {"areas", std::move(*areas)}};
  return true;
}

void AreaSnapshots::on_fetch_failed(std::int64_t now) {
  last_attempt_ = now;
}

Json AreaSnapshots::contribution() const {
  return unsent_;
}

void AreaSnapshots::acknowledge(const Json& sent) {
  // A newer snapshot fetched while the request was in flight stays unsent.
  if (!unsent_.is_null() && sent == unsent_) unsent_ = nullptr;
}

}  // namespace dinodia::telemetry
