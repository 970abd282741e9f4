#pragma once
// The 0.4.17 heating and electric usage files (heating_usage_state.json schema 2,
// electric_usage_state.json schema 1) as the exchange format with 0.4.17, so that upgrade ->
// run -> rollback -> run -> upgrade again keeps every counted second once
// (docs/compatibility.md#usage-files).
//
// Rollback: after every save of the usage store the file of each tracker that changed is
// rewritten in exactly 0.4.17's shape (its keys in its order, 2-space indent, none of this
// agent's own fields), atomically with mode 0600, so 0.4.17 started on the same /data resumes
// from the current totals, dirty flags and reset state. The file is written after the database
// commit and its SHA-256 recorded after the rename: a kill between the two leaves either an
// older file whose digest is recorded or the current content unrecorded, never a file that
// claims less than what the next start keeps.
//
// Re-upgrade: at start-up a file whose content is neither what this agent last wrote nor what it
// last imported was written by 0.4.17 since (it rewrites the whole file after each change). The
// counters in these files are cumulative since the last reset, and 0.4.17 resumed from the ones
// this agent wrote, so the file's state replaces the stored one: counters X advanced to Y are
// taken as Y, never X + Y. The file's dirty flags, pending segments, acknowledgements and reset
// state come with it; this agent's own bookkeeping (acknowledgement order, the confirmed heating
// reset acknowledgement while the reset is the same) is carried over from the stored state.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/environment.hpp"
#include "agent/options.hpp"
#include "telemetry/electric.hpp"
#include "telemetry/heating.hpp"
#include "telemetry/usage_store.hpp"

namespace dinodia::agent {

// DINODIA_HEATING_USAGE_STATE_PATH if set, else heating_usage_persist_path; 0.4.17's default
// /data/heating_usage_state.json lives in DINODIA_DATA_DIR (the same folder in the add-on). Empty:
// no file.
std::string legacy_heating_usage_path(const Options& options, const Environment& env);
// The same for DINODIA_ELECTRIC_USAGE_STATE_PATH and electric_usage_persist_path.
std::string legacy_electric_usage_path(const Options& options, const Environment& env);

// The file text as 0.4.17 writes it, with `updatedAt` = `updated_at`.
std::string render_legacy_heating_usage(const telemetry::HeatingTracker& heating,
                                        const std::string& updated_at);
std::string render_legacy_electric_usage(const telemetry::ElectricTracker& electric,
                                         const std::string& updated_at);

struct LegacyUsageImport {
  bool heating_imported = false;
  bool electric_imported = false;
  // An import replaced state this database already held: 0.4.17 ran since this agent last did.
  bool after_rollback = false;
  std::size_t heating_entities = 0;
  std::size_t electric_rows = 0;
  std::size_t dropped_entries = 0;  // entries that could not produce a valid row
};

class LegacyUsageFiles {
 public:
  // Empty paths: that file is neither read nor written.
  LegacyUsageFiles(std::string heating_path, std::string electric_path,
                   telemetry::UsageStore& store);

  // At start-up, with the trackers loaded from the store (`*_stored`: the store held that
  // tracker's state). Imports each file that this database has not seen (the first start after
  // the upgrade) or that 0.4.17 rewrote since, saves the result to the store and records the
  // file's digest. A missing file imports nothing; an unreadable one is retried at the next
  // start; a malformed one is logged once and left to be overwritten. Throws StoreError.
  LegacyUsageImport import_changed(telemetry::HeatingTracker& heating, bool heating_stored,
                                   telemetry::ElectricTracker& electric, bool electric_stored);

  // After a successful save: rewrites the file of each tracker that changed since it was last
  // written (a tracker that never held state writes none). Failures are logged (once until a
  // write succeeds again) and retried at the next call; the store stays the source of truth.
  void export_changed(const telemetry::HeatingTracker& heating,
                      const telemetry::ElectricTracker& electric);

  const std::string& heating_path() const { return heating_path_; }
  const std::string& electric_path() const { return electric_path_; }

 private:
  bool write(const std::string& path, const std::string& text, const char* digest_key,
             bool& failing);

  std::string heating_path_;
  std::string electric_path_;
  telemetry::UsageStore& store_;
  std::optional<std::uint64_t> heating_written_rev_;
  std::optional<std::uint64_t> electric_written_rev_;
  bool heating_failing_ = false;
  bool electric_failing_ = false;
};

}  // namespace dinodia::agent
