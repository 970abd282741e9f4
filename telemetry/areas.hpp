#pragma once
// HA areas snapshot (docs/compatibility.md#ha-areas).
//
// Decisions (docs/compatibility.md#w23): a registry that is genuinely empty is sent as an empty
// `areas` list (V2 reads it as "last area removed"; AWS ignores it, which is harmless), while a
// non-empty registry whose rows are all invalid yields nothing (V2 would misread an empty list).
// A snapshot is offered until a sync that carried it commits, and never again after that: no
// re-sending of an old snapshot on fetch errors or cache hits (the platform ignores those).
#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace dinodia::telemetry {

// 0.4.17's transform of a config/area_registry/list result: first 500 rows, blank names skipped,
// case-insensitive de-duplication by name (first wins), areaId only when non-empty. nullopt
// when `result` is not an array, or is non-empty but yields no valid area.
std::optional<nlohmann::json> transform_area_registry(const nlohmann::json& result);

class AreaSnapshots {
 public:
  // ha_area_snapshot_refresh_minutes: floored; non-positive gives 10.
  explicit AreaSnapshots(double refresh_minutes = 10);

  // True if a fetch should run now (none yet, or the last attempt is older than the period).
  bool fetch_due(std::int64_t now_ms) const;
  // A successful fetch. Returns false if the result gave no usable snapshot.
  bool on_fetched(const nlohmann::json& registry_result, std::int64_t now_ms);
  // A failed fetch: retried after the period; nothing stale is offered.
  void on_fetch_failed(std::int64_t now_ms);
  // The `haAreas` value to send, or null.
  nlohmann::json contribution() const;
  // The sync that carried `sent_ha_areas` committed.
  void acknowledge(const nlohmann::json& sent_ha_areas);

 private:
  std::int64_t refresh_ms_;
  std::optional<std::int64_t> last_attempt_;
  nlohmann::json unsent_;  // null when there is nothing new to send
};

}  // namespace dinodia::telemetry
