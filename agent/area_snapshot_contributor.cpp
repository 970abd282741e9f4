#include "agent/area_snapshot_contributor.hpp"

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace dinodia::agent {

AreaSnapshotContributor::AreaSnapshotContributor(HaSyncFetches& fetches, double refresh_minutes)
    : fetches_(fetches), areas_(refresh_minutes) {}

void AreaSnapshotContributor::contribute(nlohmann::json& request_body) {
  if (fetches_.running() && areas_.fetch_due(clock::unix_millis())) fetch();
  if (nlohmann::json a = areas_.contribution(); !a.is_null())
    request_body["haAreas"] = std::move(a);
}

void AreaSnapshotContributor::on_committed(const nlohmann::json& sent_body) {
  if (sent_body.contains("haAreas")) areas_.acknowledge(sent_body["haAreas"]);
}

void AreaSnapshotContributor::fetch() {
  auto [error, result] = fetches_.area_registry();
  if (error.empty()) {
    if (!areas_.on_fetched(result, clock::unix_millis()))
      areas_.on_fetch_failed(clock::unix_millis());
  } else {
    areas_.on_fetch_failed(clock::unix_millis());
    log::warn("HA area snapshot fetch failed", log::Fields().add("error", error));
  }
}

}  // namespace dinodia::agent
