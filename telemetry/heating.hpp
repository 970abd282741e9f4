#pragma once
// Heating usage (docs/compatibility.md#heating-usage, docs/platform-protocol.md#telemetry-fields):
// classification of HA climate states, per-entity on/off/unknown accumulation with the legacy
// constants, boiler efficiency bands, schema-2 upload rows and the reset handshake. Pure and
// single-threaded: the caller serialises access and persists through UsageStore.
//
// Fixes over 0.4.17 (numbered as in docs/compatibility.md#weaknesses): observations older than the
// stored lastSeenAt are ignored, so lastSeenAt never moves backwards (W16); an upload is
// acknowledged only for rows whose current content still equals what was sent (W15); dirty rows are
// offered least recently acknowledged first, so more than 100 dirty entities cannot starve the
// tail; the event throttle defers every event instead of dropping (EventThrottle, W17); persisted
// entries are validated field by field on load (W32).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dinodia::telemetry {

// --- Classification ----------------------------------------------------------------------

struct HeatingSnapshot {
  std::string state;
  std::string hvac_mode;
  std::optional<double> current;
  std::optional<double> target;
  bool operator==(const HeatingSnapshot&) const = default;
};

struct Classification {
  bool known = false;
  bool is_on = false;
};

// From an HA state object ({state, attributes, ...}).
HeatingSnapshot extract_heating_snapshot(const nlohmann::json& state_object);
Classification classify_heating(const HeatingSnapshot& snapshot);

// --- Boiler efficiency bands -------------------------------------------------------------

struct BandRow {
  double max_idle_seconds = 0;
  double output_percent = 0;
};

struct BandTable {
  double version = 1;
  std::map<char, std::vector<BandRow>> bands;  // 'A'..'G'
};

// The bands file format; nullopt when `version` is not finite or `bands` is not an object.
std::optional<BandTable> parse_band_table(const nlohmann::json& file);
// "b " -> 'B'; nullopt unless a single letter A-G after trimming.
std::optional<char> normalize_band(std::string_view text);
std::optional<char> normalize_band(const nlohmann::json& value);
// Output fraction 0..1 after `idle_seconds` idle. 1 without a table (the shipped legacy image).
double band_output_fraction(const BandTable* table, char band, double idle_seconds);
// The first row's fraction ("hot maintaining"); 1 without rows.
double hot_maintaining_fraction(const BandTable* table, char band);

// --- Config from the platform (docs/platform-protocol.md#telemetry-fields) ---------------

struct HeatingConfig {
  std::int64_t efficiency_bands_version = 1;
  char default_band = 'B';
  std::map<std::string, char> bands_by_entity_id;
  bool operator==(const HeatingConfig&) const = default;
};

// Applies a `heatingUsageConfig` response value. Returns false (config unchanged) if it is not
// an object.
bool apply_heating_usage_config(HeatingConfig& config, const nlohmann::json& value);

// --- Tracker ----------------------------------------------------------------------------

enum class HeatingLabel { boiler, radiator };
std::string_view label_name(HeatingLabel label);

struct HeatingEntry {
  std::string entity_id;
  HeatingLabel label = HeatingLabel::radiator;
  std::int64_t on_seconds = 0;
  std::int64_t off_seconds = 0;
  std::int64_t unknown_seconds = 0;
  // Boiler only (kept at their defaults for radiators).
  double efficiency_weighted_on_seconds = 0;
  std::int64_t efficiency_on_seconds = 0;
  char efficiency_band = 'B';
  std::int64_t efficiency_band_version = 1;
  std::optional<std::int64_t> last_heat_end_at;
  std::optional<std::int64_t> heat_run_started_at;
  std::optional<double> heat_run_start_output_fraction;
  // All.
  std::int64_t last_seen_at = 0;  // epoch ms
  bool last_was_on = false;
  std::optional<bool> last_was_known;  // null only in imported legacy entries ("heal" on seed)
  bool dirty = true;
  std::optional<HeatingSnapshot> last_processed;
  std::int64_t last_processed_at = 0;
  std::int64_t last_acked_at = 0;  // epoch ms of the last acknowledged upload; 0 = never
};

enum class ObservationSource { seed, event, poll };

struct HeatingLimits {
  static constexpr std::int64_t kMaxDeltaSeconds = 86'400;
  static constexpr std::int64_t kRunStartWindowMs = 900'000;
  static constexpr std::int64_t kColdStartIdleSeconds = 5'184'000;
  static constexpr std::size_t kMaxRowsPerUpload = 100;
};

class HeatingTracker {
 public:
  explicit HeatingTracker(std::optional<BandTable> bands = std::nullopt);

  // One observation of a selected entity at `t_ms`. Returns true if the state changed.
  // Ignored (false): an observation older than the entry's lastSeenAt; from `event`, a snapshot
  // equal to the last processed one (0.4.17's dedupe).
  bool observe(const std::string& entity_id, HeatingLabel label, const HeatingSnapshot& snapshot,
               std::int64_t t_ms, ObservationSource source = ObservationSource::event);
  // Seeding rule: no entry, or an imported entry with unknown previous state.
  bool needs_seed(const std::string& entity_id) const;

  // {"schemaVersion":2,"capturedAt":...,"devices":[<=100 rows]} or null when nothing is dirty.
  nlohmann::json upload_body(std::int64_t now_ms) const;
  // Clears `dirty` for each sent row whose entry still produces exactly that row.
  void acknowledge(const nlohmann::json& sent_heating_usage, std::int64_t now_ms);

  // True if `reset_at` (a response's heatingUsageResetAt) must be applied
  // (docs/platform-protocol.md#telemetry-fields).
  bool reset_due(const nlohmann::json& reset_at) const;
  // Clears every entity, keeps the config, remembers `reset_at` (trimmed, as received).
  void apply_reset(std::string_view reset_at);
  // The value to send as heatingUsageResetAckAt, if any.
  std::optional<std::string> reset_ack() const;
  // The platform answered a request that carried `ack` with heatingUsageResetAt null: it has
  // completed the reset, so the ack need not be sent forever (docs/compatibility.md#w33).
  void reset_ack_confirmed(std::string_view ack);

  bool apply_config(const nlohmann::json& heating_usage_config);
  const HeatingConfig& config() const { return config_; }

  const std::vector<HeatingEntry>& entries() const { return entries_; }
  const HeatingEntry* find(std::string_view entity_id) const;
  // Bumped on every mutation; the store persists when it differs from what it last wrote.
  std::uint64_t revision() const { return revision_; }
  // Bumped only when an observation changes what later accumulation depends on: a new entry,
  // a different on/off/known classification or label. Such a change must be persisted before
  // it is acted on (a crash would otherwise count the old state past the change); anything
  // else is elapsed time that the next observation recomputes from the stored state.
  std::uint64_t state_changes() const { return state_changes_; }

  // Persistence in the legacy schema-2 file shape (docs/compatibility.md#usage-files) plus our own
  // fields; from_json validates each entry and drops the ones that are not usable. Returns dropped
  // entry count.
  nlohmann::json to_json() const;
  std::size_t load_json(const nlohmann::json& state);

  // The row for one entry (schema 2, docs/platform-protocol.md#telemetry-fields), as uploaded.
  nlohmann::json row(const HeatingEntry& entry) const;

 private:
  HeatingEntry* find_mut(std::string_view entity_id);
  char effective_band(const HeatingEntry* entry, const std::string& entity_id) const;

  std::optional<BandTable> bands_;
  HeatingConfig config_;
  std::vector<HeatingEntry> entries_;  // insertion order
  std::optional<std::string> last_reset_at_;
  bool reset_ack_done_ = false;
  std::uint64_t revision_ = 0;
  std::uint64_t state_changes_ = 0;
};

// Per-entity event throttle (heating_usage_min_process_interval_ms) that defers instead of dropping
// (docs/compatibility.md#w17): events inside the interval are held in arrival order and all
// released, in that order, once the interval has passed. Each keeps its own time_fired, so the
// accumulation is weighted by HA's timestamps, not by when the throttle lets an event through.
class EventThrottle {
 public:
  static constexpr std::size_t kMaxHeldPerEntity = 256;
  explicit EventThrottle(std::int64_t min_interval_ms) : min_interval_ms_(min_interval_ms) {}
  // True: process now. False: held; take it later from take_due().
  bool admit(const std::string& entity_id, const nlohmann::json& event, std::int64_t now_ms);
  // Held events whose interval has passed: entity by entity (earliest due first), each
  // entity's events in arrival order.
  std::vector<nlohmann::json> take_due(std::int64_t now_ms);
  // One entity's held events now, in arrival order: an observation stamped "now" (a poll)
  // must not overtake them, or they would be ignored as out of order.
  std::vector<nlohmann::json> take_entity(const std::string& entity_id, std::int64_t now_ms);
  // Earliest time a held event becomes due, if any.
  std::optional<std::int64_t> next_due() const;
  // Events merged because an entity had kMaxHeldPerEntity held already.
  std::size_t overflowed() const { return overflowed_; }

 private:
  struct Held {
    std::vector<nlohmann::json> events;
    std::int64_t due_at;
  };
  std::int64_t min_interval_ms_;
  std::map<std::string, std::int64_t> last_processed_;
  std::map<std::string, Held> held_;
  std::size_t overflowed_ = 0;
};

}  // namespace dinodia::telemetry
