#pragma once
// Electric usage tracker (docs/compatibility.md#electric-usage): ON/OFF/UNKNOWN runtime of
// `Light`-labelled light.* / switch.* entities per (tracking epoch, assignment epoch); an HA area
// change closes the segment into `pending` and opens a new one.
//
// Fixes over 0.4.17 (numbered as in docs/compatibility.md#weaknesses): out-of-order observations
// are ignored (W16; seeding with HA's last_updated after a restart no longer inflates
// unknownSeconds); uploads are capped at 200 rows, the platform's own cap, and only rows still
// identical to what was sent are acknowledged (W15, W22); `pending` is bounded: at the cap an area
// change updates the open segment's area instead of opening a new one, so no time is ever dropped;
// string fields are cut to the platform's length limits so a long name cannot get a row dropped.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dinodia::telemetry {

struct ElectricDescriptor {
  std::string entity_id;
  std::string entity_name;             // empty: the entity id
  std::optional<std::string> area_id;  // null/empty: no area
  std::optional<std::string> area_name;
};

// 0.4.17's stateClass: "on"/"off" known, everything else unknown.
struct ElectricClass {
  bool known = false;
  bool is_on = false;
};
ElectricClass classify_electric(std::string_view state);

// `^(light|switch)\.` case-insensitively (0.4.17's eligibility rule).
bool is_electric_entity_id(std::string_view entity_id);

struct ElectricEntry {
  std::string entity_id;
  std::string entity_name;
  std::int64_t tracking_started_at = 0;
  std::string tracking_epoch;
  std::int64_t assignment_started_at = 0;
  std::string assignment_epoch;
  std::optional<std::string> area_id;
  std::optional<std::string> area_name;
  std::int64_t on_seconds = 0;
  std::int64_t off_seconds = 0;
  std::int64_t unknown_seconds = 0;
  std::int64_t last_seen_at = 0;
  bool last_was_on = false;
  bool last_was_known = false;
  bool retired = false;
  bool dirty = true;
  std::optional<std::int64_t> retired_at;
};

struct ElectricSettings {
  std::size_t max_tracked_entities = 200;  // option electric_usage_max_tracked_entities
  std::int64_t unknown_gap_seconds = 600;  // option ..._gap_unknown_after_seconds (0 -> 600)
  std::size_t max_pending_segments = 1000;
  static constexpr std::int64_t kMaxIntervalSeconds = 86'400;
  static constexpr std::size_t kMaxRowsPerUpload = 200;
};

// Random UUID v4 from the OS CSPRNG.
std::string uuid_v4();

class ElectricTracker {
 public:
  using EpochSource = std::function<std::string()>;
  explicit ElectricTracker(ElectricSettings settings = {}, EpochSource epochs = uuid_v4);

  bool observe(const ElectricDescriptor& d, std::string_view state, std::int64_t t_ms);
  // The entity left the selection. Accrues up to max(t, lastSeenAt).
  bool retire(std::string_view entity_id, std::int64_t t_ms);

  // {"schemaVersion":1,"capturedAt":...,"devices":[<=200 rows]} or null.
  nlohmann::json payload(std::int64_t now_ms) const;
  // Acknowledge exactly the sent rows that are still unchanged.
  void acknowledge(const nlohmann::json& sent_electric_usage);

  // The platform's usage reset (heatingUsageResetAt resets electric usage too,
  // docs/compatibility.md#heating-usage). `reset_at` is normalised to ISO; invalid or equal to the
  // stored one: no-op.
  bool apply_reset(std::string_view reset_at);
  std::optional<std::string> reset_acknowledgement() const { return reset_ack_pending_at_; }
  void acknowledge_reset(std::string_view ack);
  const std::optional<std::string>& last_reset_at() const { return last_reset_at_; }

  const std::vector<ElectricEntry>& entities() const { return entities_; }
  const std::vector<ElectricEntry>& pending() const { return pending_; }
  std::size_t merged_area_changes() const { return merged_area_changes_; }
  std::uint64_t revision() const { return revision_; }
  // Bumped when an observation opens, revives, retires or re-areas a segment or changes its
  // on/off/known classification: changes that must be durable before they are acted on.
  // Same-state observations only add elapsed time, which the next observation recomputes.
  std::uint64_t state_changes() const { return state_changes_; }

  nlohmann::json row(const ElectricEntry& e) const;
  // Persistence in the legacy schema-1 file shape (docs/compatibility.md#usage-files); entries are
  // validated on load.
  nlohmann::json to_json() const;
  std::size_t load_json(const nlohmann::json& state);

 private:
  ElectricEntry* find_mut(std::string_view id);
  void accrue(ElectricEntry& e, std::int64_t t) const;
  ElectricEntry fresh(const ElectricDescriptor& d, std::int64_t t);

  ElectricSettings settings_;
  EpochSource epochs_;
  std::vector<ElectricEntry> entities_;
  std::vector<ElectricEntry> pending_;
  std::optional<std::string> last_reset_at_;
  std::optional<std::string> reset_ack_pending_at_;
  std::size_t merged_area_changes_ = 0;
  std::uint64_t revision_ = 0;
  std::uint64_t state_changes_ = 0;
};

}  // namespace dinodia::telemetry
