#pragma once
// Durable heating/electric usage state (docs/compatibility.md#usage-files, fixing #w12, #w13,
// #w32): its own tables in the agent's SQLite file (<DINODIA_DATA_DIR>/dinodia-agent.db) on its own
// connection, WAL, synchronous=NORMAL, one transaction per save, so a kill -9 at any point leaves
// either the previous or the new state. Saving is cheap enough to do for every observed state
// change (write-through), after every batch of same-state observations and after every
// acknowledgement; the caller also saves on SIGTERM.
//
// On the first start the legacy JSON files (heating_usage_state.json schema 2,
// electric_usage_state.json schema 1) are imported once, so an upgrade keeps its totals. The
// files are left in place (the old add-on version can still be rolled back to).
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "telemetry/electric.hpp"
#include "telemetry/heating.hpp"

struct sqlite3;

namespace dinodia::telemetry {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LegacyImportResult {
  bool already_done = false;
  bool heating_imported = false;
  bool electric_imported = false;
  std::size_t heating_entities = 0;
  std::size_t electric_rows = 0;
  std::size_t dropped_entries = 0;  // legacy entries that could not produce a valid row
  bool retry_next_start = false;    // a file existed but could not be read
};

class UsageStore {
 public:
  // Opens (creating if needed) the database and the telemetry tables. Throws StoreError.
  explicit UsageStore(const std::string& db_path);
  ~UsageStore();
  UsageStore(const UsageStore&) = delete;
  UsageStore& operator=(const UsageStore&) = delete;

  // False when nothing is stored yet.
  bool load(HeatingTracker& heating);
  bool load(ElectricTracker& electric);
  // Write the tracker if its revision changed since the last save/load. Throws StoreError.
  void save(const HeatingTracker& heating);
  void save(const ElectricTracker& electric);
  // Both trackers in one transaction (an observation can change both).
  void save(const HeatingTracker& heating, const ElectricTracker& electric);

  // Imports the legacy files into trackers that have no stored state yet, once per database.
  // Paths may be empty (nothing to import). Throws StoreError on database errors only.
  LegacyImportResult import_legacy_once(const std::string& heating_path,
                                        const std::string& electric_path, HeatingTracker& heating,
                                        ElectricTracker& electric);

 private:
  std::optional<std::string> read_state(const char* name);
  void write_state(const char* name, const std::string& json);
  void exec(const char* sql);

  sqlite3* db_ = nullptr;
  std::optional<std::uint64_t> heating_saved_rev_;
  std::optional<std::uint64_t> electric_saved_rev_;
};

}  // namespace dinodia::telemetry
