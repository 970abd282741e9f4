#include "agent/usage_ledger.hpp"

#include <algorithm>
#include <exception>

#include "agent/state_store.hpp"
#include "common/log.hpp"

namespace dinodia::agent {
namespace {

telemetry::ElectricSettings electric_settings(const Options& o) {
  telemetry::ElectricSettings s;
  s.max_tracked_entities =
      static_cast<std::size_t>(std::max(1, o.electric_usage_max_tracked_entities));
  s.unknown_gap_seconds = o.electric_usage_gap_unknown_after_seconds > 0
                              ? o.electric_usage_gap_unknown_after_seconds
                              : 600;
  return s;
}

}  // namespace

UsageLedger::UsageLedger(const Options& options, const Environment& env)
    : electric_(electric_settings(options)) {
  const std::string db = StateStore::default_path(env.data_dir);
  try {
    store_ = std::make_unique<telemetry::UsageStore>(db);
    std::lock_guard lock(mutex_);
    const bool heating_stored = store_->load(heating_);
    const bool electric_stored = store_->load(electric_);
    legacy_ = std::make_unique<LegacyUsageFiles>(legacy_heating_usage_path(options, env),
                                                 legacy_electric_usage_path(options, env), *store_);
    const auto r = legacy_->import_changed(heating_, heating_stored, electric_, electric_stored);
    if (r.heating_imported || r.electric_imported) {
      log::info("Imported legacy usage state", log::Fields()
                                                   .add("heatingEntities", r.heating_entities)
                                                   .add("electricRows", r.electric_rows)
                                                   .add("dropped", r.dropped_entries)
                                                   .add("afterRollback", r.after_rollback));
    }
    // Current from the start: 0.4.17 rolled back to right after this start finds these totals.
    legacy_->export_changed(heating_, electric_);
  } catch (const std::exception& e) {
    log::error("Could not open the usage store; usage is kept in memory only",
               log::Fields().add("path", db).add("error", e.what()));
    legacy_.reset();
    store_.reset();
  }
}

bool UsageLedger::save() {
  std::lock_guard lock(mutex_);
  return save_locked();
}

void UsageLedger::save_now(const char* why) {
  save();
  log::debug("Usage state saved", log::Fields().add("reason", why));
}

bool UsageLedger::save_locked() {
  if (!store_) return false;
  try {
    store_->save(heating_, electric_);
  } catch (const std::exception& e) {
    log::error("Could not save usage state", log::Fields().add("error", e.what()));
    return false;
  }
  // Only after the commit: the file never holds more than the next start keeps.
  legacy_->export_changed(heating_, electric_);
  return true;
}

std::uint64_t UsageLedger::state_changes_locked() const {
  return heating_.state_changes() + electric_.state_changes();
}

// A state change (new segment, area or on/off/known classification) is written through at once,
// so a kill -9 right after it cannot count the old state past the change; same-state elapsed
// time is left to the batched save. Returns whether a batched save is still wanted.
bool UsageLedger::write_through_locked(std::uint64_t changes_before, const std::string& entity_id) {
  if (state_changes_locked() == changes_before) return true;
  if (save_locked()) {
    log::debug("Usage state change recorded", log::Fields().add("entityId", entity_id));
  }
  return false;
}

}  // namespace dinodia::agent
