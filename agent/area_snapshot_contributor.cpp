#include "agent/area_snapshot_contributor.hpp"

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace dinodia::agent {

AreaSnapshotContributor::AreaSnapshotContributor(HaSyncFetches& fetches, double refresh_minutes)
    : fetches_(fetches), areas_(refresh_minutes) {}

void AreaSnapshotContributor::contribute(nlohmann::json& request_body) {
  // Asked before the service started too: the first token-state after pairing carries the
  // snapshot (docs/compatibility.md#first-cycle).
  const bool retry = retry_after_start_ && fetches_.running();
  if (fetches_.may_fetch() && (retry || areas_.fetch_due(clock::unix_millis()))) fetch();
  if (nlohmann::json a = areas_.contribution(); !a.is_null())
    request_body["haAreas"] = std::move(a);
}

void AreaSnapshotContributor::on_committed(const nlohmann::json& sent_body) {
  if (sent_body.contains("haAreas")) areas_.acknowledge(sent_body["haAreas"]);
}

void AreaSnapshotContributor::fetch() {
  const bool first = fetches_.before_start();
  retry_after_start_ = false;
  auto [error, result] = fetches_.area_registry();
  if (error.empty()) {
    if (!areas_.on_fetched(result, clock::unix_millis()))
      areas_.on_fetch_failed(clock::unix_millis());
  } else {
    areas_.on_fetch_failed(clock::unix_millis());
    // A first-cycle fetch has a shorter bound (agent/ha_sync_fetches.cpp): when it fails, the
    // first cycle after the service started tries again instead of waiting out the refresh
    // period. Not the first cycle's own later attempts: each would wait that bound again.
    retry_after_start_ = first;
    log::warn("HA area snapshot fetch failed", log::Fields().add("error", error));
  }
}

}  // namespace dinodia::agent
