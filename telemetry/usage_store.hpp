#pragma once
// Durable heating/electric usage state (docs/compatibility.md#usage-files, fixing #w12, #w13,
// #w32): its own tables in the agent's SQLite file (<DINODIA_DATA_DIR>/dinodia-agent.db) on its own
// connection, WAL, synchronous=NORMAL, one transaction per save, so a kill -9 at any point leaves
// either the previous or the new state. Saving is cheap enough to do for every observed state
// change (write-through), after every batch of same-state observations and after every
// acknowledgement; the caller also saves on SIGTERM.
//
// The 0.4.17 JSON files (heating_usage_state.json schema 2, electric_usage_state.json schema 1)
// are the exchange format with 0.4.17 across an upgrade, a rollback and a re-upgrade: the agent
// layer imports them when 0.4.17 wrote them last and rewrites them after every save
// (agent/legacy_usage_files.hpp, docs/compatibility.md#usage-files). This store only keeps the
// bookkeeping for that in its meta table.
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

  // Small key/value bookkeeping next to the state (e.g. the digest of the last legacy file
  // written). Throws StoreError.
  std::optional<std::string> meta(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);

 private:
  std::optional<std::string> read_state(const char* name);
  void write_state(const char* name, const std::string& json);
  void exec(const char* sql);

  sqlite3* db_ = nullptr;
  std::optional<std::uint64_t> heating_saved_rev_;
  std::optional<std::uint64_t> electric_saved_rev_;
};

}  // namespace dinodia::telemetry
