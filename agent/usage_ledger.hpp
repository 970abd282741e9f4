#pragma once
// What heating and electric usage share: their two trackers, the durable store behind them and
// the one mutex that guards both (the tracker loop observes on the bridge's strand, the sync
// contributors read and acknowledge on the sync thread).
//
// Write-through: an observation that changes state (a new or re-areaed segment, an
// on/off/known change, a retirement) is saved to SQLite before record() returns, so before the
// next observation is handled and a kill -9 right after it loses nothing. Same-state
// observations only add elapsed time, which the next observation recomputes from the stored
// state: record() then asks the caller for a batched save instead.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "agent/environment.hpp"
#include "agent/legacy_usage_files.hpp"
#include "agent/options.hpp"
#include "telemetry/electric.hpp"
#include "telemetry/heating.hpp"
#include "telemetry/usage_store.hpp"

namespace dinodia::agent {

class UsageLedger {
 public:
  // Opens the usage store (<data_dir>/dinodia-agent.db), loads both trackers, imports the 0.4.17
  // usage files if 0.4.17 wrote them since this agent last did (or this database never saw
  // them) and brings the files up to date (agent/legacy_usage_files.hpp). A store that cannot
  // be opened is logged and the ledger runs without persistence.
  UsageLedger(const Options& options, const Environment& env);

  // Runs f(heating, electric) under the lock and returns what it returns.
  template <typename F>
  auto with(F&& f) {
    std::lock_guard lock(mutex_);
    return f(heating_, electric_);
  }
  template <typename F>
  auto with(F&& f) const {
    std::lock_guard lock(mutex_);
    return f(heating_, electric_);
  }

  // Runs the observations `observe(heating, electric)` (true if any changed something) under the
  // lock and writes a resulting state change through at once. Returns true when something
  // changed that is left to a batched save.
  template <typename F>
  bool record(const std::string& entity_id, F&& observe) {
    std::lock_guard lock(mutex_);
    const std::uint64_t before = state_changes_locked();
    const bool changed = observe(heating_, electric_);
    return write_through_locked(before, entity_id) && changed;
  }

  // Saves what changed since the last save (one transaction), then rewrites the 0.4.17 file of
  // each tracker that changed. Logs and returns false on failure.
  bool save();
  // save(), then a debug line naming why (a batch, the end of a poll, shutdown, ...).
  void save_now(const char* why);

 private:
  bool save_locked();
  std::uint64_t state_changes_locked() const;
  bool write_through_locked(std::uint64_t changes_before, const std::string& entity_id);

  mutable std::mutex mutex_;
  telemetry::HeatingTracker heating_;
  telemetry::ElectricTracker electric_;
  std::unique_ptr<telemetry::UsageStore> store_;
  std::unique_ptr<LegacyUsageFiles> legacy_;  // null without a store
};

}  // namespace dinodia::agent
