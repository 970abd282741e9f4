#pragma once
// Uploads `electricUsage` (at most 200 rows, the platform's own cap) and acknowledges exactly the
// rows that were sent and are unchanged since. Sync thread; the tracker under the ledger's lock.
//
// The platform's schema declares areaId / areaName / entityName optional strings and drops a row
// that carries null there (the legacy agent sent null and lost those rows): they are left out of
// the upload instead, and put back before acknowledging, which compares against the tracker's own
// rows (docs/compatibility.md).
#include "agent/sync_contributor.hpp"
#include "agent/usage_ledger.hpp"

namespace dinodia::agent {

class ElectricUsageContributor final : public SyncContributor {
 public:
  explicit ElectricUsageContributor(UsageLedger& ledger) : ledger_(ledger) {}

  void contribute(nlohmann::json& request_body) override;
  void on_committed(const nlohmann::json& sent_body) override;

 private:
  UsageLedger& ledger_;
};

}  // namespace dinodia::agent
