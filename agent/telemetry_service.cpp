#include "agent/telemetry_service.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/state_store.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_client/ha_client.hpp"
#include "telemetry/areas.hpp"
#include "telemetry/electric.hpp"
#include "telemetry/heating.hpp"
#include "telemetry/lan_address.hpp"
#include "telemetry/usage_store.hpp"

namespace dinodia::agent {

namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using std::chrono::milliseconds;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr auto kSaveDelay = milliseconds(1000);
constexpr auto kFirstRefreshDelay = milliseconds(10000);
constexpr auto kSyncFetchWait = std::chrono::seconds(16);

std::int64_t now_ms() {
  return clock::unix_millis();
}

// Observation times from HA, clamped to now: a clock that runs ahead (or a bogus time_fired)
// must not put lastSeenAt in the future (A5.8 drops rows more than 5 min ahead) or block later
// observations as "out of order".
std::int64_t observation_time(const json& primary, const json& fallback) {
  const std::int64_t now = now_ms();
  for (const json* v : {&primary, &fallback}) {
    if (v->is_string()) {
      if (auto t = clock::parse_iso8601_millis(v->get<std::string>())) return std::min(*t, now);
    }
  }
  return now;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::optional<std::string> json_string(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  std::string s(text::trim(it->get<std::string>()));
  if (s.empty()) return std::nullopt;
  return s;
}

// A5.8 declares areaId/areaName/entityName optional strings: V2's schema drops a row that
// carries null there (the legacy agent sent null and lost those rows). They are omitted
// instead, and put back before acknowledging, which compares against the tracker's own rows.
constexpr const char* kOptionalElectricKeys[] = {"entityName", "areaId", "areaName"};

void strip_null_optionals(json& electric_usage) {
  for (auto& row : electric_usage["devices"]) {
    for (const char* k : kOptionalElectricKeys) {
      if (row.contains(k) && row[k].is_null()) row.erase(k);
    }
  }
}

void restore_null_optionals(json& electric_usage) {
  if (!electric_usage.is_object() || !electric_usage.value("devices", json()).is_array()) return;
  for (auto& row : electric_usage["devices"]) {
    if (!row.is_object()) continue;
    for (const char* k : kOptionalElectricKeys) {
      if (!row.contains(k)) row[k] = nullptr;
    }
  }
}

class Service final : public TelemetryService, public std::enable_shared_from_this<Service> {
 public:
  Service(const Options& o, const Environment& env, asio::io_context& io)
      : options_(o),
        io_(io),
        strand_(asio::make_strand(io)),
        poll_timer_(strand_),
        refresh_timer_(strand_),
        throttle_timer_(strand_),
        save_timer_(strand_),
        throttle_(o.heating_usage_min_process_interval_ms),
        electric_(electric_settings(o)),
        areas_(o.ha_area_snapshot_refresh_minutes) {
    ha_ = ha_client_config(o, env);
    heating_enabled_ = o.heating_usage_tracking_enabled;
    electric_enabled_ = o.electric_usage_tracking_enabled;
    electric_label_ = text::lower(text::trim(o.electric_usage_tracking_label));
    if (electric_label_.empty()) electric_label_ = "light";
    // Legacy clamps both to 60..3600 s; a test-only override makes the loop observable.
    heating_poll_ms_ =
        std::clamp<std::int64_t>(o.heating_usage_poll_interval_seconds, 60, 3600) * 1000;
    electric_poll_ms_ =
        std::clamp<std::int64_t>(o.electric_usage_poll_interval_seconds, 60, 3600) * 1000;
    if (const char* t = std::getenv("DINODIA_TELEMETRY_POLL_SECONDS"); t && std::atoi(t) > 0) {
      heating_poll_ms_ = electric_poll_ms_ = std::int64_t{std::atoi(t)} * 1000;
    }
    heating_refresh_ms_ = std::max<std::int64_t>(1, o.heating_usage_label_refresh_minutes) * 60000;
    electric_refresh_ms_ = std::max<std::int64_t>(
        60000,
        (o.electric_usage_label_refresh_minutes > 0 ? o.electric_usage_label_refresh_minutes : 5) *
            std::int64_t{60000});
    open_store(env);
  }

  // --- lifecycle ------------------------------------------------------------------------

  void start() override {
    auto self = shared_from_this();
    started_ = true;
    if (!heating_enabled_ && !electric_enabled_) {
      log::info("Usage tracking disabled; no Home Assistant tracker connection");
      return;
    }
    std::weak_ptr<Service> weak = self;
    conn_ = ha_client::HaConnection::create(io_, ha_,
                                            {[weak] {
                                               if (auto s = weak.lock())
                                                 asio::post(s->strand_, [s] { s->on_ready(); });
                                             },
                                             [weak](const json& event) {
                                               if (auto s = weak.lock())
                                                 asio::post(s->strand_,
                                                            [s, event] { s->on_event(event); });
                                             }});
    conn_->start();
    asio::post(strand_, [self] {
      self->schedule_poll();
      self->schedule_refresh(kFirstRefreshDelay);
      log::info("Heating usage poll scheduled",
                log::Fields().add("everySeconds", self->poll_period_ms() / 1000));
    });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    if (conn_) conn_->stop();
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(strand_, [this, &done] {
      poll_timer_.cancel();
      refresh_timer_.cancel();
      throttle_timer_.cancel();
      save_timer_.cancel();
      done.set_value();
    });
    // The io_context may already be stopped; the flush below does not depend on it.
    f.wait_for(std::chrono::seconds(2));
    save_now("shutdown");
  }

  json status_json() const override {
    std::lock_guard lock(mutex_);
    std::size_t dirty = 0;
    for (const auto& e : electric_.entities()) dirty += e.dirty ? 1 : 0;
    for (const auto& e : electric_.pending()) dirty += e.dirty ? 1 : 0;
    return json{{"enabled", electric_enabled_},
                {"trackedEntities", electric_.entities().size()},
                {"pendingSegments", electric_.pending().size()},
                {"dirtyEntities", dirty},
                {"lastResetAt",
                 electric_.last_reset_at() ? json(*electric_.last_reset_at()) : json(nullptr)}};
  }

  // --- SyncContributor (sync thread) ----------------------------------------------------

  void contribute(json& body) override {
    // LAN detection runs each cycle, before signing (legacy §14).
    if (started_ && !stopped_ && !ha_.supervisor_token.empty()) {
      if (auto lan = detect_lan()) body["lanBaseUrl"] = *lan;
    }
    const bool areas_due = started_ && !stopped_ && [&] {
      std::lock_guard lock(mutex_);
      return areas_.fetch_due(now_ms());
    }();
    if (areas_due) fetch_areas();
    std::lock_guard lock(mutex_);
    const std::int64_t now = now_ms();
    std::optional<std::string> ack = heating_.reset_ack();
    if (!ack) ack = electric_.reset_acknowledgement();
    if (ack) body["heatingUsageResetAckAt"] = *ack;
    if (json h = heating_.upload_body(now); !h.is_null()) body["heatingUsage"] = std::move(h);
    if (json e = electric_.payload(now); !e.is_null()) {
      strip_null_optionals(e);
      body["electricUsage"] = std::move(e);
    }
    if (json a = areas_.contribution(); !a.is_null()) body["haAreas"] = std::move(a);
  }

  void on_response(const json& sent, const json& response) override {
    if (!response.is_object()) return;
    std::lock_guard lock(mutex_);
    if (response.contains("heatingUsageConfig")) {
      heating_.apply_config(response["heatingUsageConfig"]);
    }
    const json reset_at = response.value("heatingUsageResetAt", json());
    if (heating_.reset_due(reset_at) && reset_at.is_string()) {
      // Applied to both trackers whatever the enable flags (hand-over note): a disabled
      // tracker holds nothing worth keeping past a reset the owner asked for.
      const std::string r = reset_at.get<std::string>();
      heating_.apply_reset(r);
      electric_.apply_reset(r);
      log::info("Heating usage state reset applied", log::Fields().add("resetAt", r));
    } else if (reset_at.is_null() && sent.contains("heatingUsageResetAckAt") &&
               sent["heatingUsageResetAckAt"].is_string()) {
      heating_.reset_ack_confirmed(sent["heatingUsageResetAckAt"].get<std::string>());
    }
    save_locked();
  }

  void on_committed(const json& sent) override {
    std::lock_guard lock(mutex_);
    const std::int64_t now = now_ms();
    if (sent.contains("heatingUsage")) heating_.acknowledge(sent["heatingUsage"], now);
    if (sent.contains("electricUsage")) {
      json e = sent["electricUsage"];
      restore_null_optionals(e);
      electric_.acknowledge(e);
    }
    if (sent.contains("haAreas")) areas_.acknowledge(sent["haAreas"]);
    if (sent.contains("heatingUsageResetAckAt") && sent["heatingUsageResetAckAt"].is_string()) {
      electric_.acknowledge_reset(sent["heatingUsageResetAckAt"].get<std::string>());
    }
    save_locked();
  }

 private:
  static telemetry::ElectricSettings electric_settings(const Options& o) {
    telemetry::ElectricSettings s;
    s.max_tracked_entities =
        static_cast<std::size_t>(std::max(1, o.electric_usage_max_tracked_entities));
    s.unknown_gap_seconds = o.electric_usage_gap_unknown_after_seconds > 0
                                ? o.electric_usage_gap_unknown_after_seconds
                                : 600;
    return s;
  }

  void open_store(const Environment& env) {
    const std::string db = StateStore::default_path(env.data_dir);
    try {
      store_ = std::make_unique<telemetry::UsageStore>(db);
      std::lock_guard lock(mutex_);
      store_->load(heating_);
      store_->load(electric_);
      const auto r = store_->import_legacy_once(
          env_or("DINODIA_HEATING_USAGE_STATE_PATH", options_.heating_usage_persist_path),
          env_or("DINODIA_ELECTRIC_USAGE_STATE_PATH", options_.electric_usage_persist_path),
          heating_, electric_);
      if (r.heating_imported || r.electric_imported) {
        log::info("Imported legacy usage state", log::Fields()
                                                     .add("heatingEntities", r.heating_entities)
                                                     .add("electricRows", r.electric_rows)
                                                     .add("dropped", r.dropped_entries));
      }
    } catch (const std::exception& e) {
      log::error("Could not open the usage store; usage is kept in memory only",
                 log::Fields().add("path", db).add("error", e.what()));
      store_.reset();
    }
  }

  // --- persistence ----------------------------------------------------------------------

  bool save_locked() {
    if (!store_) return false;
    try {
      store_->save(heating_, electric_);
      return true;
    } catch (const std::exception& e) {
      log::error("Could not save usage state", log::Fields().add("error", e.what()));
      return false;
    }
  }

  std::uint64_t state_changes_locked() const {
    return heating_.state_changes() + electric_.state_changes();
  }

  // After observations made under the lock since `changes_before` was read: a state change
  // (new segment, area or on/off/known classification) is written through at once, so a
  // kill -9 right after it cannot count the old state past the change; same-state elapsed time
  // is left to the batched save, the next observation recomputes it from the stored state.
  // Returns whether a batched save is still wanted.
  bool write_through_locked(std::uint64_t changes_before, const std::string& entity_id) {
    if (state_changes_locked() == changes_before) return true;
    if (save_locked()) {
      log::debug("Usage state change recorded", log::Fields().add("entityId", entity_id));
    }
    return false;
  }

  void save_now(const char* why) {
    std::lock_guard lock(mutex_);
    save_locked();
    log::debug("Usage state saved", log::Fields().add("reason", why));
  }

  // Observations come in bursts (events, a poll run); one transaction per burst.
  void save_soon() {
    if (save_pending_) return;
    save_pending_ = true;
    save_timer_.expires_after(kSaveDelay);
    save_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->save_pending_ = false;
      if (!ec) self->save_now("batch");
    });
  }

  // --- HA connection events (strand) ----------------------------------------------------

  void on_ready() {
    if (stopped_) return;
    subscribed_ = false;
    const std::uint64_t session = conn_->ready_count();
    refresh(true, [self = shared_from_this(), session] {
      self->seed([self, session] { self->subscribe(session); });
    });
  }

  void subscribe(std::uint64_t session) {
    if (stopped_ || !conn_->ready() || conn_->ready_count() != session || subscribed_) return;
    conn_->request("subscribe_events", json{{"event_type", "state_changed"}},
                   [self = shared_from_this(), session](const std::string& error, const json&) {
                     asio::post(self->strand_, [self, session, error] {
                       if (self->conn_->ready_count() != session) return;
                       if (!error.empty()) {
                         // Polling goes on regardless; the refresh loop retries (§17 item 21).
                         log::warn("Heating usage startup failed",
                                   log::Fields().add("error", error));
                         return;
                       }
                       self->subscribed_ = true;
                       log::info("Usage tracking subscribed to state_changed");
                     });
                   });
  }

  void on_event(const json& event) {
    if (stopped_ || event.value("event_type", "") != "state_changed") return;
    const json& data = event.value("data", json::object()).is_object() ? event["data"] : json();
    const auto entity_id = json_string(data, "entity_id");
    if (!entity_id) return;
    const json new_state = data.value("new_state", json());
    bool changed = false;
    const std::uint64_t changes_before = [&] {
      std::lock_guard lock(mutex_);
      return state_changes_locked();
    }();
    if (electric_enabled_) {
      auto it = electric_selection_.find(*entity_id);
      if (it != electric_selection_.end() && new_state.is_object()) {
        const std::int64_t t = observation_time(event.value("time_fired", json()),
                                                new_state.value("last_updated", json()));
        std::lock_guard lock(mutex_);
        changed |= electric_.observe(it->second, new_state.value("state", ""), t);
      }
    }
    if (heating_enabled_ && heating_selection_.count(*entity_id) != 0) {
      if (throttle_.admit(*entity_id, event, now_ms())) {
        changed |= heating_event(*entity_id, event);
      } else {
        arm_throttle();
      }
    }
    if (!changed) return;
    std::lock_guard lock(mutex_);
    if (write_through_locked(changes_before, *entity_id)) save_soon();
  }

  bool heating_event(const std::string& entity_id, const json& event) {
    auto sel = heating_selection_.find(entity_id);
    if (sel == heating_selection_.end()) return false;
    const json& data = event["data"];
    const json new_state = data.value("new_state", json());
    if (!new_state.is_object()) return false;
    const std::int64_t t = observation_time(event.value("time_fired", json()),
                                            new_state.value("last_updated", json()));
    std::lock_guard lock(mutex_);
    return heating_.observe(entity_id, sel->second, telemetry::extract_heating_snapshot(new_state),
                            t, telemetry::ObservationSource::event);
  }

  // Held (throttled) events are processed when due, not dropped (§17 item 17).
  void arm_throttle() {
    auto due = throttle_.next_due();
    if (!due) return;
    throttle_timer_.expires_after(milliseconds(std::max<std::int64_t>(0, *due - now_ms())));
    throttle_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      bool batch = false;
      for (const json& ev : self->throttle_.take_due(now_ms())) {
        const auto id = json_string(ev["data"], "entity_id");
        if (!id) continue;
        const std::uint64_t before = [&] {
          std::lock_guard lock(self->mutex_);
          return self->state_changes_locked();
        }();
        if (!self->heating_event(*id, ev)) continue;
        std::lock_guard lock(self->mutex_);
        batch |= self->write_through_locked(before, *id);
      }
      if (batch) self->save_soon();
      self->arm_throttle();
    });
  }

  // --- registry refresh -----------------------------------------------------------------

  // Runs the due refreshes (all when forced), then `done` on the strand.
  void refresh(bool force, std::function<void()> done) {
    const std::int64_t now = now_ms();
    const bool heating_due =
        heating_enabled_ && (force || now - heating_refreshed_at_ >= heating_refresh_ms_);
    const bool electric_due =
        electric_enabled_ && (force || now - electric_refreshed_at_ >= electric_refresh_ms_);
    auto remaining = std::make_shared<int>(1 + (heating_due ? 1 : 0) + (electric_due ? 1 : 0));
    auto step = [self = shared_from_this(), remaining, done = std::move(done)]() {
      if (--*remaining == 0 && done) done();
    };
    if (heating_due) {
      heating_refreshed_at_ = now;  // set before the attempt, as legacy (§11.1 step 5)
      refresh_heating(step);
    }
    if (electric_due) refresh_electric(step);
    step();
  }

  // Posts a WS request whose answer is handled on the strand.
  void ws(std::string type, std::function<void(std::string, json)> handler) {
    conn_->request(
        std::move(type), json::object(),
        [self = shared_from_this(), handler = std::move(handler)](std::string e, json v) {
          asio::post(self->strand_,
                     [handler, e = std::move(e), v = std::move(v)] { handler(e, v); });
        });
  }

  void refresh_heating(std::function<void()> done) {
    ws("config/label_registry/list", [self = shared_from_this(), done = std::move(done)](
                                         const std::string& e, const json& labels) {
      if (!e.empty() || !labels.is_array()) {
        log::warn("Heating usage label registry refresh failed",
                  log::Fields().add("error", e.empty() ? "unexpected shape" : e));
        return done();
      }
      std::map<std::string, std::string> id_by_name;
      for (const auto& l : labels) {
        auto name = json_string(l, "name");
        auto id = json_string(l, "label_id");
        if (name && id) id_by_name[text::lower(*name)] = *id;
      }
      std::map<std::string, telemetry::HeatingLabel> wanted;  // label id -> label
      std::vector<std::string> wanted_names;
      for (const auto& n : self->options_.heating_usage_tracking_labels) {
        const std::string lower = text::lower(text::trim(n));
        wanted_names.push_back(lower);
        auto it = id_by_name.find(lower);
        if (it == id_by_name.end()) continue;
        if (lower == "boiler") wanted[it->second] = telemetry::HeatingLabel::boiler;
        if (lower == "radiator") wanted[it->second] = telemetry::HeatingLabel::radiator;
      }
      if (wanted.empty()) {
        self->heating_selection_.clear();
        log::warn("Heating usage label registry returned no matching labels",
                  log::Fields().add("wanted", json(wanted_names).dump()));
        return done();
      }
      self->ws("config/entity_registry/list_for_display",
               [self, wanted, done](const std::string& e2, json reg) {
                 if (!e2.empty() || !reg.is_object() || !reg.value("entities", json()).is_array()) {
                   log::warn("Heating usage label registry refresh failed",
                             log::Fields().add("error", e2.empty() ? "unexpected shape" : e2));
                   return done();
                 }
                 std::map<std::string, telemetry::HeatingLabel> selection;
                 const auto cap = static_cast<std::size_t>(
                     std::max(1, self->options_.heating_usage_max_tracked_entities));
                 for (const auto& row : reg["entities"]) {
                   if (selection.size() >= cap) break;
                   auto id = json_string(row, "ei");
                   const json lb = row.is_object() ? row.value("lb", json()) : json();
                   if (!id || !lb.is_array()) continue;
                   for (const auto& l : lb) {
                     if (!l.is_string()) continue;
                     auto w = wanted.find(l.get<std::string>());
                     if (w != wanted.end()) {
                       selection.emplace(*id, w->second);
                       break;
                     }
                   }
                 }
                 self->heating_selection_ = std::move(selection);
                 log::info("Heating usage label registry refreshed",
                           log::Fields().add("entities", self->heating_selection_.size()));
                 done();
               });
    });
  }

  void refresh_electric(std::function<void()> done) {
    struct Lists {
      json labels, entities, devices, areas;
      std::string error;
      int remaining = 4;
    };
    auto lists = std::make_shared<Lists>();
    auto finish = [self = shared_from_this(), lists, done = std::move(done)]() {
      if (--lists->remaining > 0) return;
      if (!lists->error.empty()) {
        log::warn("Electric usage registry refresh failed",
                  log::Fields().add("error", lists->error));
        return done();
      }
      self->apply_electric_registry(*lists);
      self->electric_refreshed_at_ = now_ms();  // only on success (§12.2)
      done();
    };
    auto get = [&](const char* type, json Lists::*slot) {
      ws(type, [lists, slot, finish](const std::string& e, json v) {
        if (!e.empty() && lists->error.empty()) lists->error = e;
        if (e.empty() && !v.is_array() && lists->error.empty()) lists->error = "unexpected shape";
        (*lists).*slot = std::move(v);
        finish();
      });
    };
    get("config/label_registry/list", &Lists::labels);
    get("config/entity_registry/list", &Lists::entities);
    get("config/device_registry/list", &Lists::devices);
    get("config/area_registry/list", &Lists::areas);
  }

  template <typename L>
  void apply_electric_registry(const L& lists) {
    std::map<std::string, std::string> label_names, area_names;
    std::map<std::string, json> devices;
    for (const auto& l : lists.labels) {
      auto id = json_string(l, "label_id");
      auto name = json_string(l, "name");
      if (id && name) label_names[*id] = *name;
    }
    for (const auto& a : lists.areas) {
      auto id = json_string(a, "area_id");
      auto name = json_string(a, "name");
      if (id && name) area_names[*id] = *name;
    }
    for (const auto& d : lists.devices) {
      if (auto id = json_string(d, "id")) devices[*id] = d;
    }
    auto has_label = [&](const json& labels) {
      if (!labels.is_array()) return false;
      for (const auto& l : labels) {
        if (!l.is_string()) continue;
        auto it = label_names.find(l.get<std::string>());
        if (it != label_names.end() && text::lower(text::trim(it->second)) == electric_label_) {
          return true;
        }
      }
      return false;
    };
    std::map<std::string, telemetry::ElectricDescriptor> selection;
    for (const auto& e : lists.entities) {
      auto id = json_string(e, "entity_id");
      if (!id || !telemetry::is_electric_entity_id(*id)) continue;
      auto truthy = [&](const char* k) {
        const json v = e.value(k, json());
        return !(v.is_null() || (v.is_string() && v.get<std::string>().empty()) ||
                 (v.is_boolean() && !v.get<bool>()));
      };
      if (truthy("disabled_by") || truthy("hidden_by")) continue;
      const json* device = nullptr;
      if (auto did = json_string(e, "device_id")) {
        auto it = devices.find(*did);
        if (it != devices.end()) device = &it->second;
      }
      if (!has_label(e.value("labels", json())) &&
          !(device && has_label(device->value("labels", json())))) {
        continue;
      }
      telemetry::ElectricDescriptor d;
      d.entity_id = *id;
      d.entity_name =
          json_string(e, "name").value_or(json_string(e, "original_name").value_or(*id));
      d.area_id = json_string(e, "area_id");
      if (!d.area_id && device) d.area_id = json_string(*device, "area_id");
      if (d.area_id) {
        auto it = area_names.find(*d.area_id);
        if (it != area_names.end()) d.area_name = it->second;
      }
      selection.emplace(*id, std::move(d));
    }
    {
      std::lock_guard lock(mutex_);
      const std::int64_t now = now_ms();
      bool retired = false;
      for (const auto& [id, d] : electric_selection_) {
        if (selection.count(id) == 0) retired |= electric_.retire(id, now);
      }
      if (retired) save_locked();  // a retirement is a state change: written through
    }
    electric_selection_ = std::move(selection);
    log::info("Electric usage registry refreshed",
              log::Fields().add("entities", electric_selection_.size()));
  }

  // --- seeding and polling ----------------------------------------------------------------

  // Reads each entity's state over REST, one at a time, handing it to `handle` on the strand.
  void fetch_states(std::shared_ptr<std::vector<std::string>> ids, std::size_t index,
                    std::function<void(const std::string&, const json&)> handle,
                    std::function<void()> done) {
    if (stopped_ || index >= ids->size() || (conn_ && !conn_->ready())) return done();
    const std::string id = (*ids)[index];
    ha_client::get_state(
        io_, ha_, id,
        [self = shared_from_this(), ids = std::move(ids), index, handle = std::move(handle),
         done = std::move(done), id](const std::string& e, const json& state) {
          asio::post(self->strand_, [=] {
            if (e.empty()) handle(id, state);
            self->fetch_states(ids, index + 1, handle, done);
          });
        });
  }

  void seed(const std::function<void()>& done) {
    auto ids = std::make_shared<std::vector<std::string>>();
    std::map<std::string, std::pair<bool, bool>> wants;  // id -> (heating, electric)
    if (heating_enabled_) {
      std::lock_guard lock(mutex_);
      for (const auto& [id, label] : heating_selection_) {
        if (heating_.needs_seed(id)) wants[id].first = true;
      }
    }
    if (electric_enabled_) {
      for (const auto& [id, d] : electric_selection_) wants[id].second = true;
    }
    for (const auto& [id, w] : wants) ids->push_back(id);
    auto self = shared_from_this();
    fetch_states(
        ids, 0,
        [self, wants](const std::string& id, const json& state) {
          const auto& w = wants.at(id);
          self->observe_state(id, state, w.first, w.second, telemetry::ObservationSource::seed,
                              observation_time(state.value("last_updated", json()),
                                               state.value("last_changed", json())));
        },
        [self] {
          log::info("Heating usage seeded initial entity states",
                    log::Fields().add("entities", self->heating_selection_.size()));
          log::info("Electric usage seeded initial entity states",
                    log::Fields().add("entities", self->electric_selection_.size()));
          self->save_now("seed");
        });
    // Subscribing does not wait for the seeding: events that arrive meanwhile are not missed,
    // and an event older than a seeded state is ignored as out of order.
    done();
  }

  // Processes an entity's throttled events now (strand), before an observation that would
  // otherwise overtake them and have them ignored as out of order.
  void release_held(const std::string& id) {
    for (const json& ev : throttle_.take_entity(id, now_ms())) {
      const std::uint64_t before = [&] {
        std::lock_guard lock(mutex_);
        return state_changes_locked();
      }();
      if (!heating_event(id, ev)) continue;
      std::lock_guard lock(mutex_);
      if (write_through_locked(before, id)) save_soon();
    }
  }

  void observe_state(const std::string& id, const json& state, bool heating, bool electric,
                     telemetry::ObservationSource source, std::int64_t t) {
    if (heating && heating_enabled_) release_held(id);
    std::lock_guard lock(mutex_);
    const std::uint64_t before = state_changes_locked();
    if (heating && heating_enabled_) {
      auto it = heating_selection_.find(id);
      if (it != heating_selection_.end()) {
        heating_.observe(id, it->second, telemetry::extract_heating_snapshot(state), t, source);
      }
    }
    if (electric && electric_enabled_) {
      auto it = electric_selection_.find(id);
      if (it != electric_selection_.end()) {
        electric_.observe(it->second, state.value("state", ""), t);
      }
    }
    // Same-state observations are saved once at the end of the seed or poll run.
    write_through_locked(before, id);
  }

  std::int64_t poll_period_ms() const {
    std::int64_t p = heating_poll_ms_;
    if (electric_enabled_)
      p = heating_enabled_ ? std::min(p, electric_poll_ms_) : electric_poll_ms_;
    return p;
  }

  // The one poll chain of the process: it keeps ticking while HA is away (a tick then does
  // nothing) instead of ending and being restarted per connection (§17 items 20, 21).
  void schedule_poll() {
    if (stopped_) return;
    poll_timer_.expires_after(milliseconds(poll_period_ms()));
    poll_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      self->poll();
    });
  }

  void poll() {
    if (!conn_->ready()) return schedule_poll();
    const std::int64_t now = now_ms();
    const bool heating_due =
        heating_enabled_ && now - heating_polled_at_ >= heating_poll_ms_ - 1000;
    const bool electric_due =
        electric_enabled_ && now - electric_polled_at_ >= electric_poll_ms_ - 1000;
    auto ids = std::make_shared<std::vector<std::string>>();
    std::map<std::string, std::pair<bool, bool>> wants;
    if (heating_due) {
      heating_polled_at_ = now;
      for (const auto& [id, l] : heating_selection_) wants[id].first = true;
    }
    if (electric_due) {
      electric_polled_at_ = now;
      for (const auto& [id, d] : electric_selection_) wants[id].second = true;
    }
    for (const auto& [id, w] : wants) ids->push_back(id);
    auto self = shared_from_this();
    fetch_states(
        ids, 0,
        [self, wants](const std::string& id, const json& state) {
          const auto& w = wants.at(id);
          // Poll time is "now" (legacy §11.3), not HA's last_updated.
          self->observe_state(id, state, w.first, w.second, telemetry::ObservationSource::poll,
                              now_ms());
        },
        [self] {
          self->save_now("poll");
          self->schedule_poll();
        });
  }

  void schedule_refresh(milliseconds delay) {
    if (stopped_) return;
    refresh_timer_.expires_after(delay);
    refresh_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      std::int64_t period = self->heating_refresh_ms_;
      if (self->electric_enabled_) period = std::min(period, self->electric_refresh_ms_);
      if (!self->conn_->ready()) return self->schedule_refresh(milliseconds(period));
      const std::uint64_t session = self->conn_->ready_count();
      self->refresh(false, [self, session, period] {
        if (!self->subscribed_) self->subscribe(session);
        self->schedule_refresh(milliseconds(period));
      });
    });
  }

  // --- sync-cycle fetches (sync thread; blocking with bounded waits) -----------------------

  std::optional<std::string> detect_lan() {
    auto p = std::make_shared<std::promise<std::optional<std::string>>>();
    auto f = p->get_future();
    ha_client::get_network_info(io_, ha_, [p](const std::string& e, const json& v) {
      if (!e.empty()) return p->set_value(std::nullopt);
      p->set_value(telemetry::lan_base_url_from_network_info(v));
    });
    if (f.wait_for(std::chrono::seconds(4)) != std::future_status::ready) return std::nullopt;
    return f.get();
  }

  void fetch_areas() {
    auto p = std::make_shared<std::promise<std::pair<std::string, json>>>();
    auto f = p->get_future();
    ha_client::ws_command_once(io_, ha_, "config/area_registry/list", json::object(),
                               milliseconds(15000), [p](std::string e, json v) {
                                 p->set_value({std::move(e), std::move(v)});
                               });
    const bool ready = f.wait_for(kSyncFetchWait) == std::future_status::ready;
    auto [error, result] = ready ? f.get() : std::pair<std::string, json>{"timeout", json()};
    std::lock_guard lock(mutex_);
    if (error.empty()) {
      if (!areas_.on_fetched(result, now_ms())) areas_.on_fetch_failed(now_ms());
    } else {
      areas_.on_fetch_failed(now_ms());
      log::warn("HA area snapshot fetch failed", log::Fields().add("error", error));
    }
  }

  Options options_;
  asio::io_context& io_;
  Strand strand_;
  asio::steady_timer poll_timer_;
  asio::steady_timer refresh_timer_;
  asio::steady_timer throttle_timer_;
  asio::steady_timer save_timer_;
  ha_client::HaClientConfig ha_;
  std::shared_ptr<ha_client::HaConnection> conn_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};

  // Strand-only.
  bool heating_enabled_ = true;
  bool electric_enabled_ = true;
  std::string electric_label_;
  std::int64_t heating_poll_ms_ = 300000;
  std::int64_t electric_poll_ms_ = 300000;
  std::int64_t heating_refresh_ms_ = 1800000;
  std::int64_t electric_refresh_ms_ = 300000;
  std::int64_t heating_refreshed_at_ = 0;
  std::int64_t electric_refreshed_at_ = 0;
  std::int64_t heating_polled_at_ = 0;
  std::int64_t electric_polled_at_ = 0;
  bool subscribed_ = false;
  bool save_pending_ = false;
  std::map<std::string, telemetry::HeatingLabel> heating_selection_;
  std::map<std::string, telemetry::ElectricDescriptor> electric_selection_;
  telemetry::EventThrottle throttle_;

  // Guarded by mutex_.
  mutable std::mutex mutex_;
  telemetry::HeatingTracker heating_;
  telemetry::ElectricTracker electric_;
  telemetry::AreaSnapshots areas_;
  std::unique_ptr<telemetry::UsageStore> store_;
};

}  // namespace

ha_client::HaClientConfig ha_client_config(const Options& options, const Environment& env) {
  ha_client::HaClientConfig c;
  c.upstream = ha_bridge::parse_upstream_url(env.supervisor_url);
  c.supervisor_token = env.supervisor_token;
  c.ws_tokens = options.upstream_ws_tokens(env.supervisor_token);
  return c;
}

std::shared_ptr<TelemetryService> make_telemetry_service(const Options& options,
                                                         const Environment& env,
                                                         asio::io_context& io) {
  return std::make_shared<Service>(options, env, io);
}

}  // namespace dinodia::agent
