#include "telemetry/electric.hpp"

#include <algorithm>
#include <cmath>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/text.hpp"

namespace dinodia::telemetry {
namespace {

using Json = nlohmann::json;

// Cuts to at most `max` code points (the platform's limits) without splitting a UTF-8 sequence.
std::string cut(std::string_view s, std::size_t max) {
  std::size_t cps = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (cps == max) return std::string(s.substr(0, i));
      ++cps;
    }
  }
  return std::string(s);
}

std::optional<std::string> non_empty(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  auto t = text::trim(*v);
  if (t.empty()) return std::nullopt;
  return std::string(t);
}

Json opt_string(const std::optional<std::string>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::optional<std::string> json_opt_string(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return non_empty(it->get<std::string>());
}

std::optional<std::int64_t> json_counter(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  double d = it->get<double>();
  if (!std::isfinite(d) || d < 0) return std::nullopt;
  return static_cast<std::int64_t>(std::floor(d));
}

std::optional<std::int64_t> json_time(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return clock::parse_iso8601_millis(it->get_ref<const std::string&>());
}

Json entry_json(const ElectricEntry& e) {
  Json j = {{"entityId", e.entity_id},
            {"entityName", e.entity_name},
            {"trackingStartedAt", clock::iso8601_from_millis(e.tracking_started_at)},
            {"trackingEpoch", e.tracking_epoch},
            {"assignmentStartedAt", clock::iso8601_from_millis(e.assignment_started_at)},
            {"assignmentEpoch", e.assignment_epoch},
            {"areaId", opt_string(e.area_id)},
            {"areaName", opt_string(e.area_name)},
            {"onSeconds", e.on_seconds},
            {"offSeconds", e.off_seconds},
            {"unknownSeconds", e.unknown_seconds},
            {"lastSeenAt", clock::iso8601_from_millis(e.last_seen_at)},
            {"lastWasOn", e.last_was_on},
            {"lastWasKnown", e.last_was_known},
            {"retired", e.retired},
            {"dirty", e.dirty}};
  if (e.retired_at) j["retiredAt"] = clock::iso8601_from_millis(*e.retired_at);
  return j;
}

std::optional<ElectricEntry> entry_from(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  ElectricEntry e;
  auto id = json_opt_string(j, "entityId");
  auto track = json_opt_string(j, "trackingEpoch");
  auto assign = json_opt_string(j, "assignmentEpoch");
  auto seen = json_time(j, "lastSeenAt");
  if (!id || !is_electric_entity_id(*id) || !track || !assign || !seen) return std::nullopt;
  e.entity_id = *id;
  e.entity_name = json_opt_string(j, "entityName").value_or(*id);
  e.tracking_epoch = *track;
  e.assignment_epoch = *assign;
  e.last_seen_at = *seen;
  e.tracking_started_at = json_time(j, "trackingStartedAt").value_or(*seen);
  e.assignment_started_at = json_time(j, "assignmentStartedAt").value_or(e.tracking_started_at);
  e.area_id = json_opt_string(j, "areaId");
  e.area_name = json_opt_string(j, "areaName");
  e.on_seconds = json_counter(j, "onSeconds").value_or(0);
  e.off_seconds = json_counter(j, "offSeconds").value_or(0);
  e.unknown_seconds = json_counter(j, "unknownSeconds").value_or(0);
  e.last_was_on = j.value("lastWasOn", Json()) == Json(true);
  e.last_was_known = j.value("lastWasKnown", Json()) == Json(true);
  e.retired = j.value("retired", Json()) == Json(true);
  e.dirty = j.value("dirty", Json(true)) != Json(false);
  e.retired_at = json_time(j, "retiredAt");
  return e;
}

}  // namespace

ElectricClass classify_electric(std::string_view state) {
  auto s = text::lower(text::trim(state));
  if (s == "on") return {true, true};
  if (s == "off") return {true, false};
  return {false, false};
}

bool is_electric_entity_id(std::string_view id) {
  auto t = text::trim(id);
  return text::istarts_with(t, "light.") || text::istarts_with(t, "switch.");
}

std::string uuid_v4() {
  std::string b = crypto::random_bytes(16);
  b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0F) | 0x40);
  b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3F) | 0x80);
  std::string hex = crypto::to_hex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

ElectricTracker::ElectricTracker(ElectricSettings settings, EpochSource epochs)
    : settings_(settings), epochs_(std::move(epochs)) {
  if (settings_.max_tracked_entities < 1) settings_.max_tracked_entities = 1;
  if (settings_.unknown_gap_seconds <= 0) settings_.unknown_gap_seconds = 600;  // as 0.4.17
}

ElectricEntry* ElectricTracker::find_mut(std::string_view id) {
  for (auto& e : entities_)
    if (e.entity_id == id) return &e;
  return nullptr;
}

void ElectricTracker::accrue(ElectricEntry& e, std::int64_t t) const {
  const std::int64_t elapsed = std::clamp<std::int64_t>((t - e.last_seen_at) / 1000, 0,
                                                        ElectricSettings::kMaxIntervalSeconds);
  if (elapsed <= 0) return;
  if (elapsed > settings_.unknown_gap_seconds || !e.last_was_known) {
    e.unknown_seconds += elapsed;
  } else if (e.last_was_on) {
    e.on_seconds += elapsed;
  } else {
    e.off_seconds += elapsed;
  }
}

ElectricEntry ElectricTracker::fresh(const ElectricDescriptor& d, std::int64_t t) {
  ElectricEntry e;
  e.entity_id = std::string(text::trim(d.entity_id));
  e.tracking_epoch = epochs_();
  e.assignment_epoch = epochs_();
  e.tracking_started_at = e.assignment_started_at = e.last_seen_at = t;
  return e;
}

bool ElectricTracker::observe(const ElectricDescriptor& d, std::string_view state, std::int64_t t) {
  const std::string id(text::trim(d.entity_id));
  if (id.empty() || t <= 0) return false;
  const ElectricClass cls = classify_electric(state);
  ElectricEntry* e = find_mut(id);
  const auto area = non_empty(d.area_id);
  // A new segment, a revived one or a different classification changes what later time is
  // counted as (see state_changes()).
  bool state_change =
      e == nullptr || e->retired || e->last_was_on != cls.is_on || e->last_was_known != cls.known;
  if (e == nullptr) {
    if (entities_.size() >= settings_.max_tracked_entities) return false;
    entities_.push_back(fresh(d, t));
    e = &entities_.back();
  } else {
    if (t < e->last_seen_at) return false;  // out of order: already counted up to lastSeenAt
    if (!e->retired && e->area_id.value_or("") != area.value_or("")) {
      state_change = true;
      accrue(*e, t);
      if (pending_.size() < settings_.max_pending_segments) {
        ElectricEntry closed = *e;
        closed.retired = true;
        closed.retired_at = t;
        closed.dirty = true;
        pending_.push_back(std::move(closed));
        *e = fresh(d, t);
      } else {
        ++merged_area_changes_;  // bounded pending: keep counting in the open segment
      }
    } else {
      accrue(*e, t);
    }
  }
  auto name = text::trim(d.entity_name);
  if (!name.empty()) e->entity_name = std::string(name);
  if (e->entity_name.empty()) e->entity_name = id;
  e->area_id = area;
  e->area_name = non_empty(d.area_name);
  e->last_seen_at = t;
  e->last_was_on = cls.is_on;
  e->last_was_known = cls.known;
  e->retired = false;
  e->retired_at.reset();
  e->dirty = true;
  ++revision_;
  if (state_change) ++state_changes_;
  return true;
}

bool ElectricTracker::retire(std::string_view id, std::int64_t t) {
  ElectricEntry* e = find_mut(id);
  if (e == nullptr || e->retired) return false;
  t = std::max(t, e->last_seen_at);
  accrue(*e, t);
  e->last_seen_at = t;
  e->retired = true;
  e->retired_at = t;
  e->dirty = true;
  ++revision_;
  ++state_changes_;
  return true;
}

Json ElectricTracker::row(const ElectricEntry& e) const {
  // Key order as 0.4.17 (nlohmann sorts keys anyway; the platform does not care).
  return Json{{"label", "Light"},
              {"entityId", e.entity_id},
              {"entityName", cut(e.entity_name.empty() ? e.entity_id : e.entity_name, 200)},
              {"trackingStartedAt", clock::iso8601_from_millis(e.tracking_started_at)},
              {"trackingEpoch", cut(e.tracking_epoch, 128)},
              {"assignmentStartedAt", clock::iso8601_from_millis(e.assignment_started_at)},
              {"assignmentEpoch", cut(e.assignment_epoch, 128)},
              {"areaId", e.area_id ? Json(cut(*e.area_id, 128)) : Json(nullptr)},
              {"areaName", e.area_name ? Json(cut(*e.area_name, 200)) : Json(nullptr)},
              {"onSeconds", std::max<std::int64_t>(0, e.on_seconds)},
              {"offSeconds", std::max<std::int64_t>(0, e.off_seconds)},
              {"unknownSeconds", std::max<std::int64_t>(0, e.unknown_seconds)},
              {"lastSeenAt", clock::iso8601_from_millis(e.last_seen_at)},
              {"lastWasOn", e.last_was_on},
              {"lastWasKnown", e.last_was_known},
              {"retired", e.retired}};
}

Json ElectricTracker::payload(std::int64_t now_ms) const {
  Json devices = Json::array();
  for (const auto* list : {&pending_, &entities_}) {
    for (const auto& e : *list) {
      if (devices.size() >= ElectricSettings::kMaxRowsPerUpload) break;
      if (e.dirty) devices.push_back(row(e));
    }
  }
  if (devices.empty()) return nullptr;
  return Json{{"schemaVersion", 1},
              {"capturedAt", clock::iso8601_from_millis(now_ms)},
              {"devices", std::move(devices)}};
}

void ElectricTracker::acknowledge(const Json& sent) {
  if (!sent.is_object() || !sent.contains("devices") || !sent["devices"].is_array()) return;
  bool changed = false;
  for (const auto& r : sent["devices"]) {
    if (!r.is_object()) continue;
    auto same = [&](const ElectricEntry& e) {
      return e.entity_id == r.value("entityId", "") &&
             e.tracking_epoch == r.value("trackingEpoch", "") &&
             e.assignment_epoch == r.value("assignmentEpoch", "") && row(e) == r;
    };
    auto p = std::find_if(pending_.begin(), pending_.end(), same);
    if (p != pending_.end()) {
      pending_.erase(p);
      changed = true;
      continue;
    }
    auto it = std::find_if(entities_.begin(), entities_.end(), same);
    if (it == entities_.end()) continue;
    if (it->retired) {
      entities_.erase(it);
    } else {
      it->dirty = false;
    }
    changed = true;
  }
  if (changed) ++revision_;
}

bool ElectricTracker::apply_reset(std::string_view reset_at) {
  auto ms = clock::parse_iso8601_millis(text::trim(reset_at));
  if (!ms) return false;
  const std::string iso = clock::iso8601_from_millis(*ms);
  if (last_reset_at_ == iso) return false;
  entities_.clear();
  pending_.clear();
  last_reset_at_ = iso;
  reset_ack_pending_at_ = iso;
  ++revision_;
  return true;
}

void ElectricTracker::acknowledge_reset(std::string_view ack) {
  if (reset_ack_pending_at_ && *reset_ack_pending_at_ == ack) {
    reset_ack_pending_at_.reset();
    ++revision_;
  }
}

Json ElectricTracker::to_json() const {
  Json ents = Json::object();
  for (const auto& e : entities_) ents[e.entity_id] = entry_json(e);
  Json pend = Json::array();
  for (const auto& e : pending_) pend.push_back(entry_json(e));
  return Json{{"schemaVersion", 1},
              {"lastResetAt", opt_string(last_reset_at_)},
              {"resetAckPendingAt", opt_string(reset_ack_pending_at_)},
              {"entities", std::move(ents)},
              {"pending", std::move(pend)}};
}

std::size_t ElectricTracker::load_json(const Json& state) {
  if (!state.is_object() || state.value("schemaVersion", Json()) != Json(1)) return 0;
  auto ents = state.find("entities");
  if (ents == state.end() || !ents->is_object()) return 0;
  std::size_t dropped = 0;
  entities_.clear();
  pending_.clear();
  for (const auto& [id, j] : ents->items()) {
    auto e = entry_from(j);
    if (!e) {
      ++dropped;
      continue;
    }
    if (e->entity_id != id) e->entity_id = std::string(text::trim(id));
    entities_.push_back(std::move(*e));
  }
  if (auto p = state.find("pending"); p != state.end() && p->is_array()) {
    for (const auto& j : *p) {
      auto e = entry_from(j);
      if (!e) {
        ++dropped;
        continue;
      }
      e->retired = true;
      pending_.push_back(std::move(*e));
    }
  }
  last_reset_at_ = json_opt_string(state, "lastResetAt");
  reset_ack_pending_at_ = json_opt_string(state, "resetAckPendingAt");
  ++revision_;
  return dropped;
}

}  // namespace dinodia::telemetry
