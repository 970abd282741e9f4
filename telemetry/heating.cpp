#include "telemetry/heating.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "common/clock.hpp"
#include "common/text.hpp"

namespace dinodia::telemetry {
namespace {

using Json = nlohmann::json;

// JavaScript's Number() for the values HA sends: numbers, and numeric strings.
std::optional<double> finite_number(const Json& v) {
  if (v.is_number()) {
    double d = v.get<double>();
    return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
  }
  if (v.is_string()) {
    auto s = std::string(text::trim(v.get_ref<const std::string&>()));
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(d)) return std::nullopt;
    return d;
  }
  return std::nullopt;
}

std::optional<double> first_finite(const Json& attrs, std::initializer_list<const char*> keys) {
  if (!attrs.is_object()) return std::nullopt;
  for (const char* k : keys) {
    auto it = attrs.find(k);
    if (it == attrs.end()) continue;
    if (auto d = finite_number(*it)) return d;
  }
  return std::nullopt;
}

double clamp01(double v) {
  return std::clamp(v, 0.0, 1.0);
}

// Non-negative integer from a persisted value (legacy "floored, >= 0").
std::optional<std::int64_t> counter(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  double d = it->get<double>();
  if (!std::isfinite(d) || d < 0) return std::nullopt;
  return static_cast<std::int64_t>(std::floor(d));
}

std::optional<std::int64_t> iso_field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return clock::parse_iso8601_millis(it->get_ref<const std::string&>());
}

Json iso_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? Json(clock::iso8601_from_millis(*ms)) : Json(nullptr);
}

Json snapshot_json(const HeatingSnapshot& s) {
  return Json{{"state", s.state},
              {"hvac_mode", s.hvac_mode},
              {"current", s.current ? Json(*s.current) : Json(nullptr)},
              {"target", s.target ? Json(*s.target) : Json(nullptr)}};
}

std::optional<HeatingSnapshot> snapshot_from(const Json& v) {
  if (!v.is_object()) return std::nullopt;
  HeatingSnapshot s;
  if (auto it = v.find("state"); it != v.end() && it->is_string()) s.state = *it;
  if (auto it = v.find("hvac_mode"); it != v.end() && it->is_string()) s.hvac_mode = *it;
  if (auto it = v.find("current"); it != v.end()) s.current = finite_number(*it);
  if (auto it = v.find("target"); it != v.end()) s.target = finite_number(*it);
  return s;
}

}  // namespace

// --- Classification ---------------------------------------------------------------------

HeatingSnapshot extract_heating_snapshot(const Json& st) {
  HeatingSnapshot s;
  if (!st.is_object()) return s;
  if (auto it = st.find("state"); it != st.end() && it->is_string()) s.state = *it;
  auto attrs_it = st.find("attributes");
  const Json empty = Json::object();
  const Json& attrs = (attrs_it != st.end() && attrs_it->is_object()) ? *attrs_it : empty;
  if (auto it = attrs.find("hvac_mode"); it != attrs.end() && it->is_string()) s.hvac_mode = *it;
  s.current = first_finite(attrs, {"current_temperature", "current_temp", "currentTemperature"});
  s.target = first_finite(attrs, {"temperature", "target_temperature", "target_temp",
                                  "targetTemperature", "target_temp_low", "target_temp_high"});
  return s;
}

Classification classify_heating(const HeatingSnapshot& s) {
  const std::string state = text::lower(text::trim(s.state));
  if (state == "unavailable" || state == "unknown") return {false, false};
  if (state == "off" || text::lower(text::trim(s.hvac_mode)) == "off") return {true, false};
  if (s.current && s.target) return {true, *s.target > *s.current};
  return {false, false};
}

// --- Bands ------------------------------------------------------------------------------

std::optional<char> normalize_band(std::string_view t) {
  auto s = text::trim(t);
  if (s.size() != 1) return std::nullopt;
  char c = s[0];
  if (c >= 'a' && c <= 'g') c = static_cast<char>(c - 'a' + 'A');
  if (c < 'A' || c > 'G') return std::nullopt;
  return c;
}

std::optional<char> normalize_band(const Json& v) {
  if (!v.is_string()) return std::nullopt;
  return normalize_band(std::string_view(v.get_ref<const std::string&>()));
}

std::optional<BandTable> parse_band_table(const Json& file) {
  if (!file.is_object()) return std::nullopt;
  auto v = file.find("version");
  auto b = file.find("bands");
  if (v == file.end() || !v->is_number() || !std::isfinite(v->get<double>())) return std::nullopt;
  if (b == file.end() || !b->is_object()) return std::nullopt;
  BandTable table;
  table.version = v->get<double>();
  for (const auto& [name, rows] : b->items()) {
    auto band = normalize_band(std::string_view(name));
    if (!band || !rows.is_array()) continue;
    auto& out = table.bands[*band];
    for (const auto& r : rows) {
      if (!r.is_object()) continue;
      // Non-finite fields are kept as NaN and skipped at lookup, like the legacy reader.
      BandRow row{std::nan(""), std::nan("")};
      if (auto it = r.find("maxIdleSeconds"); it != r.end() && it->is_number())
        row.max_idle_seconds = it->get<double>();
      if (auto it = r.find("outputPercent"); it != r.end() && it->is_number())
        row.output_percent = it->get<double>();
      out.push_back(row);
    }
  }
  return table;
}

namespace {
const std::vector<BandRow>* rows_for(const BandTable* table, char band) {
  if (table == nullptr) return nullptr;
  auto it = table->bands.find(band);
  if (it == table->bands.end() || it->second.empty()) return nullptr;
  return &it->second;
}
}  // namespace

double band_output_fraction(const BandTable* table, char band, double idle_seconds) {
  const auto* rows = rows_for(table, band);
  if (rows == nullptr) return 1;
  const double idle = std::max(0.0, std::floor(std::isfinite(idle_seconds) ? idle_seconds : 0));
  for (const auto& r : *rows) {
    if (!std::isfinite(r.max_idle_seconds) || !std::isfinite(r.output_percent)) continue;
    if (idle <= std::floor(r.max_idle_seconds)) return clamp01(r.output_percent / 100);
  }
  const double last = rows->back().output_percent;
  return clamp01((std::isfinite(last) ? last : 100) / 100);
}

double hot_maintaining_fraction(const BandTable* table, char band) {
  const auto* rows = rows_for(table, band);
  if (rows == nullptr) return 1;
  const double first = rows->front().output_percent;
  return clamp01((std::isfinite(first) ? first : 100) / 100);
}

bool apply_heating_usage_config(HeatingConfig& config, const Json& value) {
  if (!value.is_object()) return false;
  if (auto it = value.find("efficiencyBandsVersion");
      it != value.end() && it->is_number() && std::isfinite(it->get<double>())) {
    config.efficiency_bands_version = static_cast<std::int64_t>(std::floor(it->get<double>()));
  }
  auto def = value.find("defaultBoilerEfficiencyBand");
  config.default_band = (def != value.end() ? normalize_band(*def) : std::nullopt).value_or('B');
  std::map<std::string, char> bands;
  if (auto it = value.find("boilerBandsByEntityId"); it != value.end() && it->is_object()) {
    for (const auto& [entity, band] : it->items()) {
      auto key = std::string(text::trim(entity));
      auto b = normalize_band(band);
      if (!key.empty() && b) bands[key] = *b;
    }
  }
  config.bands_by_entity_id = std::move(bands);  // replaces the whole map
  return true;
}

// --- Tracker ----------------------------------------------------------------------------

std::string_view label_name(HeatingLabel label) {
  return label == HeatingLabel::boiler ? "Boiler" : "Radiator";
}

HeatingTracker::HeatingTracker(std::optional<BandTable> bands) : bands_(std::move(bands)) {
  if (bands_)
    config_.efficiency_bands_version = static_cast<std::int64_t>(std::floor(bands_->version));
}

HeatingEntry* HeatingTracker::find_mut(std::string_view id) {
  for (auto& e : entries_)
    if (e.entity_id == id) return &e;
  return nullptr;
}

const HeatingEntry* HeatingTracker::find(std::string_view id) const {
  for (const auto& e : entries_)
    if (e.entity_id == id) return &e;
  return nullptr;
}

char HeatingTracker::effective_band(const HeatingEntry* entry, const std::string& id) const {
  if (auto it = config_.bands_by_entity_id.find(id); it != config_.bands_by_entity_id.end())
    return it->second;
  if (entry != nullptr && normalize_band(std::string_view(&entry->efficiency_band, 1)))
    return entry->efficiency_band;
  return config_.default_band;
}

bool HeatingTracker::needs_seed(const std::string& id) const {
  const auto* e = find(id);
  return e == nullptr || !e->last_was_known.has_value();
}

bool HeatingTracker::observe(const std::string& id, HeatingLabel label, const HeatingSnapshot& snap,
                             std::int64_t t, ObservationSource source) {
  if (id.empty()) return false;
  const Classification cls = classify_heating(snap);
  HeatingEntry* e = find_mut(id);
  if (e == nullptr) {
    HeatingEntry n;
    n.entity_id = id;
    n.label = label;
    n.efficiency_band = effective_band(nullptr, id);
    n.efficiency_band_version = config_.efficiency_bands_version;
    n.last_seen_at = t;
    n.last_was_on = cls.is_on;
    n.last_was_known = cls.known;
    n.dirty = true;
    n.last_processed = snap;
    n.last_processed_at = t;
    entries_.push_back(std::move(n));
    ++revision_;
    ++state_changes_;
    return true;
  }
  if (t < e->last_seen_at) return false;  // out of order: the overlap was already counted
  if (source == ObservationSource::event && e->last_processed && *e->last_processed == snap)
    return false;

  const std::int64_t delta =
      std::clamp<std::int64_t>((t - e->last_seen_at) / 1000, 0, HeatingLimits::kMaxDeltaSeconds);
  const bool prev_known = e->last_was_known.value_or(false);
  const bool prev_on = e->last_was_on;
  const char band = effective_band(e, id);
  const bool boiler = label == HeatingLabel::boiler;
  if (delta > 0) {
    if (prev_known && prev_on) {
      e->on_seconds += delta;
      if (boiler) {
        double f = hot_maintaining_fraction(bands_ ? &*bands_ : nullptr, band);
        if (e->heat_run_started_at &&
            t - *e->heat_run_started_at <= HeatingLimits::kRunStartWindowMs &&
            e->heat_run_start_output_fraction &&
            std::isfinite(*e->heat_run_start_output_fraction)) {
          f = *e->heat_run_start_output_fraction;
        }
        e->efficiency_on_seconds += delta;
        e->efficiency_weighted_on_seconds += static_cast<double>(delta) * f;
      }
    } else if (prev_known) {
      e->off_seconds += delta;
    } else {
      e->unknown_seconds += delta;
    }
  }
  if (boiler && prev_known && cls.known) {
    if (!prev_on && cls.is_on) {
      const std::int64_t gap = e->last_heat_end_at
                                   ? std::max<std::int64_t>(0, (t - *e->last_heat_end_at) / 1000)
                                   : HeatingLimits::kColdStartIdleSeconds;
      e->heat_run_started_at = t;
      e->heat_run_start_output_fraction =
          band_output_fraction(bands_ ? &*bands_ : nullptr, band, static_cast<double>(gap));
    } else if (prev_on && !cls.is_on) {
      e->last_heat_end_at = t;
      e->heat_run_started_at.reset();
      e->heat_run_start_output_fraction.reset();
    }
  }
  if (!e->last_was_known || prev_known != cls.known || prev_on != cls.is_on || e->label != label)
    ++state_changes_;
  e->label = label;
  if (boiler) {
    e->efficiency_band = band;
    e->efficiency_band_version = config_.efficiency_bands_version;
  }
  e->last_seen_at = t;
  e->last_was_on = cls.is_on;
  e->last_was_known = cls.known;
  e->dirty = true;
  e->last_processed = snap;
  e->last_processed_at = t;
  ++revision_;
  return true;
}

Json HeatingTracker::row(const HeatingEntry& e) const {
  Json r = Json::object();
  r["label"] = std::string(label_name(e.label));
  r["entityId"] = e.entity_id;
  r["onSeconds"] = e.on_seconds;
  r["offSeconds"] = e.off_seconds;
  r["unknownSeconds"] = e.unknown_seconds;
  r["lastSeenAt"] = clock::iso8601_from_millis(e.last_seen_at);
  r["lastWasOn"] = e.last_was_on;
  r["lastWasKnown"] = e.last_was_known.value_or(false);
  if (e.label == HeatingLabel::boiler) {
    const double w = e.efficiency_weighted_on_seconds;
    r["efficiencyWeightedOnSeconds"] = std::isfinite(w) && w > 0 ? w : 0.0;
    r["efficiencyOnSeconds"] = std::max<std::int64_t>(0, e.efficiency_on_seconds);
    const char band =
        normalize_band(std::string_view(&e.efficiency_band, 1)).value_or(config_.default_band);
    r["efficiencyBand"] = std::string(1, band);
    r["efficiencyBandVersion"] = std::max<std::int64_t>(0, e.efficiency_band_version);
  }
  return r;
}

Json HeatingTracker::upload_body(std::int64_t now_ms) const {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (e.dirty && !e.entity_id.empty()) order.push_back(i);
  }
  if (order.empty()) return nullptr;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return entries_[a].last_acked_at < entries_[b].last_acked_at;
  });
  if (order.size() > HeatingLimits::kMaxRowsPerUpload)
    order.resize(HeatingLimits::kMaxRowsPerUpload);
  Json devices = Json::array();
  for (auto i : order) devices.push_back(row(entries_[i]));
  return Json{{"schemaVersion", 2},
              {"capturedAt", clock::iso8601_from_millis(now_ms)},
              {"devices", std::move(devices)}};
}

void HeatingTracker::acknowledge(const Json& sent, std::int64_t now_ms) {
  if (!sent.is_object()) return;
  auto devices = sent.find("devices");
  if (devices == sent.end() || !devices->is_array()) return;
  for (const auto& r : *devices) {
    if (!r.is_object() || !r.contains("entityId") || !r["entityId"].is_string()) continue;
    HeatingEntry* e = find_mut(r["entityId"].get<std::string>());
    // Changed while the upload was in flight: keep it dirty so the newer totals go next time.
    if (e == nullptr || !e->dirty || row(*e) != r) continue;
    e->dirty = false;
    e->last_acked_at = now_ms;
    ++revision_;
  }
}

bool HeatingTracker::reset_due(const Json& reset_at) const {
  if (!reset_at.is_string()) return false;
  auto trimmed = text::trim(reset_at.get_ref<const std::string&>());
  if (trimmed.empty()) return false;
  auto requested = clock::parse_iso8601_millis(trimmed);
  if (!requested) return false;
  if (!last_reset_at_) return true;
  auto current = clock::parse_iso8601_millis(*last_reset_at_);
  return !current || *requested > *current;
}

void HeatingTracker::apply_reset(std::string_view reset_at) {
  entries_.clear();
  last_reset_at_ = std::string(text::trim(reset_at));
  reset_ack_done_ = false;
  ++revision_;
}

std::optional<std::string> HeatingTracker::reset_ack() const {
  if (!last_reset_at_ || last_reset_at_->empty() || reset_ack_done_) return std::nullopt;
  return last_reset_at_;
}

void HeatingTracker::reset_ack_confirmed(std::string_view ack) {
  if (last_reset_at_ && *last_reset_at_ == ack && !reset_ack_done_) {
    reset_ack_done_ = true;
    ++revision_;
  }
}

bool HeatingTracker::apply_config(const Json& value) {
  HeatingConfig next = config_;
  if (!apply_heating_usage_config(next, value)) return false;
  if (next == config_) return false;
  config_ = std::move(next);
  ++revision_;
  return true;
}

// --- Persistence shape ------------------------------------------------------------------

Json HeatingTracker::to_json() const {
  Json entities = Json::object();
  for (const auto& e : entries_) {
    Json j = Json::object();
    j["label"] = std::string(label_name(e.label));
    j["onSeconds"] = e.on_seconds;
    j["offSeconds"] = e.off_seconds;
    j["unknownSeconds"] = e.unknown_seconds;
    if (e.label == HeatingLabel::boiler) {
      j["efficiencyWeightedOnSeconds"] = e.efficiency_weighted_on_seconds;
      j["efficiencyOnSeconds"] = e.efficiency_on_seconds;
      j["efficiencyBand"] = std::string(1, e.efficiency_band);
      j["efficiencyBandVersion"] = e.efficiency_band_version;
      j["lastHeatEndAt"] = iso_or_null(e.last_heat_end_at);
      j["heatRunStartedAt"] = iso_or_null(e.heat_run_started_at);
      j["heatRunStartOutputFraction"] = e.heat_run_start_output_fraction
                                            ? Json(*e.heat_run_start_output_fraction)
                                            : Json(nullptr);
    }
    j["lastSeenAt"] = clock::iso8601_from_millis(e.last_seen_at);
    j["lastWasOn"] = e.last_was_on;
    j["lastWasKnown"] = e.last_was_known ? Json(*e.last_was_known) : Json(nullptr);
    j["dirty"] = e.dirty;
    j["lastProcessed"] = e.last_processed ? snapshot_json(*e.last_processed) : Json(nullptr);
    j["lastProcessedAt"] = clock::iso8601_from_millis(e.last_processed_at);
    j["lastAckedAtMs"] = e.last_acked_at;
    entities[e.entity_id] = std::move(j);
  }
  Json bands = Json::object();
  for (const auto& [id, b] : config_.bands_by_entity_id) bands[id] = std::string(1, b);
  return Json{{"schemaVersion", 2},
              {"lastResetAt", last_reset_at_ ? Json(*last_reset_at_) : Json(nullptr)},
              {"resetAckDone", reset_ack_done_},
              {"config",
               {{"efficiencyBandsVersion", config_.efficiency_bands_version},
                {"defaultBoilerEfficiencyBand", std::string(1, config_.default_band)},
                {"boilerBandsByEntityId", bands}}},
              {"entities", std::move(entities)}};
}

std::size_t HeatingTracker::load_json(const Json& state) {
  // As 0.4.17 (docs/compatibility.md#usage-files): not an object, schemaVersion != 2, or entities
  // not an object -> ignored.
  if (!state.is_object() || state.value("schemaVersion", Json()) != Json(2)) return 0;
  auto ents = state.find("entities");
  if (ents == state.end() || !ents->is_object()) return 0;
  entries_.clear();
  std::size_t dropped = 0;
  if (auto c = state.find("config"); c != state.end()) apply_heating_usage_config(config_, *c);
  last_reset_at_.reset();
  if (auto r = state.find("lastResetAt");
      r != state.end() && r->is_string() && !r->get<std::string>().empty())
    last_reset_at_ = r->get<std::string>();
  reset_ack_done_ = state.value("resetAckDone", false) == true;
  for (const auto& [id, j] : ents->items()) {
    HeatingEntry e;
    e.entity_id = std::string(text::trim(id));
    const std::string label = j.is_object() ? j.value("label", std::string()) : std::string();
    auto on = j.is_object() ? counter(j, "onSeconds") : std::nullopt;
    auto off = j.is_object() ? counter(j, "offSeconds") : std::nullopt;
    auto seen = j.is_object() ? iso_field(j, "lastSeenAt") : std::nullopt;
    if (e.entity_id.empty() || (label != "Boiler" && label != "Radiator") || !on || !off || !seen) {
      ++dropped;  // cannot produce a row the platform accepts
      continue;
    }
    e.label = label == "Boiler" ? HeatingLabel::boiler : HeatingLabel::radiator;
    e.on_seconds = *on;
    e.off_seconds = *off;
    e.unknown_seconds = counter(j, "unknownSeconds").value_or(0);
    e.last_seen_at = *seen;
    if (auto it = j.find("efficiencyWeightedOnSeconds"); it != j.end() && it->is_number()) {
      double w = it->get<double>();
      e.efficiency_weighted_on_seconds = std::isfinite(w) && w > 0 ? w : 0;
    }
    e.efficiency_on_seconds = counter(j, "efficiencyOnSeconds").value_or(0);
    e.efficiency_band =
        (j.contains("efficiencyBand") ? normalize_band(j["efficiencyBand"]) : std::nullopt)
            .value_or(config_.default_band);
    e.efficiency_band_version =
        counter(j, "efficiencyBandVersion").value_or(config_.efficiency_bands_version);
    e.last_heat_end_at = iso_field(j, "lastHeatEndAt");
    e.heat_run_started_at = iso_field(j, "heatRunStartedAt");
    if (auto it = j.find("heatRunStartOutputFraction"); it != j.end() && it->is_number())
      e.heat_run_start_output_fraction = it->get<double>();
    e.last_was_on = j.value("lastWasOn", Json()) == Json(true);
    if (auto it = j.find("lastWasKnown"); it != j.end() && it->is_boolean())
      e.last_was_known = it->get<bool>();
    // A legacy entry with unknown previous state is "healed" by seeding.
    if (auto it = j.find("unknownSeconds"); it == j.end() || it->is_null())
      e.last_was_known.reset();
    e.dirty = j.value("dirty", Json(true)) != Json(false);
    if (auto it = j.find("lastProcessed"); it != j.end()) e.last_processed = snapshot_from(*it);
    e.last_processed_at = iso_field(j, "lastProcessedAt").value_or(e.last_seen_at);
    e.last_acked_at = counter(j, "lastAckedAtMs").value_or(0);
    entries_.push_back(std::move(e));
  }
  ++revision_;
  return dropped;
}

// --- Throttle ---------------------------------------------------------------------------

bool EventThrottle::admit(const std::string& id, const Json& event, std::int64_t now) {
  if (min_interval_ms_ <= 0) return true;
  auto it = last_processed_.find(id);
  if (it == last_processed_.end() || now - it->second >= min_interval_ms_) {
    if (held_.count(id) == 0) {
      last_processed_[id] = now;
      return true;
    }
  }
  // Hold every event, in arrival order, each with its own timestamp: keeping only the newest
  // would turn on -> off -> on into "on throughout" and count the off interval as on.
  const std::int64_t due = (it == last_processed_.end() ? now : it->second) + min_interval_ms_;
  auto h = held_.find(id);
  if (h == held_.end()) h = held_.emplace(id, Held{{}, due}).first;
  auto& events = h->second.events;
  if (events.size() >= kMaxHeldPerEntity) {
    // A flood: the newest replaces the previous newest, so at most the interval between those
    // two is attributed to the wrong state.
    events.back() = event;
    ++overflowed_;
  } else {
    events.push_back(event);
  }
  return false;
}

std::vector<Json> EventThrottle::take_due(std::int64_t now) {
  std::vector<std::pair<std::int64_t, std::string>> due;
  for (const auto& [id, h] : held_)
    if (h.due_at <= now) due.emplace_back(h.due_at, id);
  std::sort(due.begin(), due.end());
  std::vector<Json> out;
  for (const auto& [at, id] : due) {
    for (auto& ev : held_[id].events) out.push_back(std::move(ev));
    held_.erase(id);
    last_processed_[id] = now;
  }
  return out;
}

std::vector<Json> EventThrottle::take_entity(const std::string& id, std::int64_t now) {
  auto h = held_.find(id);
  if (h == held_.end()) return {};
  std::vector<Json> out = std::move(h->second.events);
  held_.erase(h);
  last_processed_[id] = now;
  return out;
}

std::optional<std::int64_t> EventThrottle::next_due() const {
  std::optional<std::int64_t> best;
  for (const auto& [id, h] : held_)
    if (!best || h.due_at < *best) best = h.due_at;
  return best;
}

}  // namespace dinodia::telemetry
