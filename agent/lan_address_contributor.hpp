#pragma once
// Uploads `lanBaseUrl`: the address the platform hands to the apps as "Home Assistant on the
// LAN", detected afresh every cycle before the request is signed (see telemetry/lan_address.hpp).
// Sync thread only.
#include "agent/ha_sync_fetches.hpp"
#include "agent/sync_contributor.hpp"

namespace dinodia::agent {

class LanAddressContributor final : public SyncContributor {
 public:
  explicit LanAddressContributor(HaSyncFetches& fetches) : fetches_(fetches) {}

  void contribute(nlohmann::json& request_body) override;

 private:
  HaSyncFetches& fetches_;
};

}  // namespace dinodia::agent
