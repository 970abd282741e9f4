#pragma once
// Uploads `heatingUsage` (dirty rows, least recently acknowledged first) and takes the
// platform's `heatingUsageConfig` (efficiency bands) from the answer; acknowledges exactly the
// rows that were sent and are unchanged since.
//
// It also carries the usage reset handshake, whose keys are named for heating but which resets
// both kinds: a `heatingUsageResetAt` in an answer clears both trackers (whatever the enable
// flags: a disabled tracker holds nothing worth keeping past a reset the owner asked for), and
// `heatingUsageResetAckAt` is then sent until the platform answers it with a null reset time.
//
// Sync thread; the trackers under the ledger's lock.
#include "agent/sync_contributor.hpp"
#include "agent/usage_ledger.hpp"

namespace dinodia::agent {

class HeatingUsageContributor final : public SyncContributor {
 public:
  explicit HeatingUsageContributor(UsageLedger& ledger) : ledger_(ledger) {}

  void contribute(nlohmann::json& request_body) override;
  void on_response(const nlohmann::json& sent_body, const nlohmann::json& response) override;
  void on_committed(const nlohmann::json& sent_body) override;

 private:
  UsageLedger& ledger_;
};

}  // namespace dinodia::agent
