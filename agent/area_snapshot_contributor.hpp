#pragma once
// Uploads `haAreas`: Home Assistant's area registry, fetched when the refresh period has passed
// and offered until a sync that carried it commits (see telemetry/areas.hpp). Sync thread only;
// the fetch blocks for a bounded time before the request is signed. Fetched in the first cycle
// of a hub with no stored hashes too, before the service started
// (docs/compatibility.md#first-cycle).
#include "agent/ha_sync_fetches.hpp"
#include "agent/sync_contributor.hpp"
#include "telemetry/areas.hpp"

namespace dinodia::agent {

class AreaSnapshotContributor final : public SyncContributor {
 public:
  // ha_area_snapshot_refresh_minutes.
  AreaSnapshotContributor(HaSyncFetches& fetches, double refresh_minutes);

  void contribute(nlohmann::json& request_body) override;
  void on_committed(const nlohmann::json& sent_body) override;

 private:
  void fetch();

  HaSyncFetches& fetches_;
  telemetry::AreaSnapshots areas_;  // sync thread only
  bool retry_after_start_ = false;  // a first-cycle fetch failed; sync thread only
};

}  // namespace dinodia::agent
