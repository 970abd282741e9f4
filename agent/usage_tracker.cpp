#include "agent/usage_tracker.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "agent/usage_cadence.hpp"
#include "agent/usage_registry_fetch.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "telemetry/observation_time.hpp"
#include "telemetry/string_field.hpp"

namespace dinodia::agent {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using std::chrono::milliseconds;
using telemetry::ElectricTracker;
using telemetry::HeatingTracker;
using telemetry::ObservationSource;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr auto kSaveDelay = milliseconds(1000);
constexpr auto kFirstRefreshDelay = milliseconds(10000);
constexpr auto kStopWait = std::chrono::seconds(2);

std::int64_t now_ms() {
  return clock::unix_millis();
}

// Which trackers want an entity's state read in a seed or poll run.
struct Wanted {
  bool heating = false;
  bool electric = false;
};
using StateReads = std::map<std::string, Wanted>;

class Tracker final : public UsageTracker, public std::enable_shared_from_this<Tracker> {
 public:
  Tracker(const Options& o, const Environment& env, ha_client::HaClientConfig ha,
          asio::io_context& io, std::shared_ptr<UsageLedger> ledger)
      : io_(io),
        strand_(asio::make_strand(io)),
        poll_timer_(strand_),
        refresh_timer_(strand_),
        throttle_timer_(strand_),
        save_timer_(strand_),
        ha_(std::move(ha)),
        ledger_(std::move(ledger)),
        heating_labels_(o.heating_usage_tracking_labels),
        heating_cap_(static_cast<std::size_t>(std::max(1, o.heating_usage_max_tracked_entities))),
        electric_label_(text::lower(text::trim(o.electric_usage_tracking_label))),
        heating_(UsageCadence::heating(o)),
        electric_(UsageCadence::electric(o)),
        throttle_(o.heating_usage_min_process_interval_ms) {
    if (electric_label_.empty()) electric_label_ = "light";
    // A test-only override that makes the poll loop observable.
    if (env.telemetry_poll_seconds) {
      heating_.poll_ms = electric_.poll_ms = std::int64_t{*env.telemetry_poll_seconds} * 1000;
    }
  }

  void start() override {
    std::weak_ptr<Tracker> weak = shared_from_this();
    ha_client::HaConnection::Handlers handlers;
    handlers.on_ready = [weak] {
      if (auto s = weak.lock()) asio::post(s->strand_, [s] { s->on_ready(); });
    };
    handlers.on_event = [weak](const json& event) {
      if (auto s = weak.lock()) asio::post(s->strand_, [s, event] { s->on_event(event); });
    };
    conn_ = ha_client::HaConnection::create(io_, ha_, std::move(handlers));
    conn_->start();
    asio::post(strand_, [self = shared_from_this()] {
      self->schedule_poll();
      self->schedule_refresh(kFirstRefreshDelay);
      log::info("Heating usage poll scheduled",
                log::Fields().add("everySeconds", self->poll_period_ms() / 1000));
    });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    // Waits for the connection's stop: its pending requests' callbacks hold this tracker
    // (docs/architecture.md#shutdown).
    if (conn_) conn_->stop_and_wait(kStopWait);
    std::promise<void> done;
    auto f = done.get_future();
    asio::post(strand_, [this, &done] {
      poll_timer_.cancel();
      refresh_timer_.cancel();
      throttle_timer_.cancel();
      save_timer_.cancel();
      done.set_value();
    });
    // The io_context may already be stopped; the caller's flush does not depend on it.
    f.wait_for(kStopWait);
  }

 private:
  // --- connection -------------------------------------------------------------------------

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
                         // Polling goes on regardless; the refresh loop retries.
                         log::warn("Heating usage startup failed",
                                   log::Fields().add("error", error));
                         return;
                       }
                       self->subscribed_ = true;
                       log::info("Usage tracking subscribed to state_changed");
                     });
                   });
  }

  // A WebSocket request whose answer is handled on the strand.
  WsRequest ws() {
    return [self = shared_from_this()](std::string type, WsHandler handler) {
      self->conn_->request(std::move(type), json::object(),
                           [self, handler = std::move(handler)](std::string e, json v) {
                             asio::post(self->strand_, [handler, e = std::move(e),
                                                        v = std::move(v)] { handler(e, v); });
                           });
    };
  }

  // --- state_changed events ---------------------------------------------------------------

  void on_event(const json& event) {
    if (stopped_ || event.value("event_type", "") != "state_changed") return;
    const json& data = event.value("data", json::object()).is_object() ? event["data"] : json();
    const auto entity_id = telemetry::string_field(data, "entity_id");
    if (!entity_id) return;
    const json new_state = data.value("new_state", json());
    const telemetry::ElectricDescriptor* electric = nullptr;
    if (electric_.enabled && new_state.is_object()) {
      auto it = electric_selection_.find(*entity_id);
      if (it != electric_selection_.end()) electric = &it->second;
    }
    bool heating_now = false;
    if (heating_.enabled && heating_selection_.count(*entity_id) != 0) {
      heating_now = throttle_.admit(*entity_id, event, now_ms());
      if (!heating_now) arm_throttle();
    }
    if (electric == nullptr && !heating_now) return;
    const bool batch = ledger_->record(*entity_id, [&](HeatingTracker& h, ElectricTracker& e) {
      bool changed = false;
      if (electric != nullptr) {
        const std::int64_t t = telemetry::observation_time(event.value("time_fired", json()),
                                                           new_state.value("last_updated", json()));
        changed |= e.observe(*electric, new_state.value("state", ""), t);
      }
      if (heating_now) changed |= observe_heating_event(h, *entity_id, event);
      return changed;
    });
    if (batch) save_soon();
  }

  // Under the ledger's lock.
  bool observe_heating_event(HeatingTracker& heating, const std::string& entity_id,
                             const json& event) const {
    auto sel = heating_selection_.find(entity_id);
    if (sel == heating_selection_.end()) return false;
    const json new_state = event["data"].value("new_state", json());
    if (!new_state.is_object()) return false;
    const std::int64_t t = telemetry::observation_time(event.value("time_fired", json()),
                                                       new_state.value("last_updated", json()));
    return heating.observe(entity_id, sel->second, telemetry::extract_heating_snapshot(new_state),
                           t, ObservationSource::event);
  }

  // Held (throttled) events, in order; true if a batched save is wanted.
  bool process_held(const std::vector<json>& events) {
    bool batch = false;
    for (const json& ev : events) {
      const auto id = telemetry::string_field(ev["data"], "entity_id");
      if (!id) continue;
      batch |= ledger_->record(*id, [&](HeatingTracker& h, ElectricTracker&) {
        return observe_heating_event(h, *id, ev);
      });
    }
    return batch;
  }

  // Held events are processed when due, not dropped.
  void arm_throttle() {
    auto due = throttle_.next_due();
    if (!due) return;
    throttle_timer_.expires_after(milliseconds(std::max<std::int64_t>(0, *due - now_ms())));
    throttle_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      if (self->process_held(self->throttle_.take_due(now_ms()))) self->save_soon();
      self->arm_throttle();
    });
  }

  // Observations come in bursts (events, a poll run); one transaction per burst.
  void save_soon() {
    if (save_pending_) return;
    save_pending_ = true;
    save_timer_.expires_after(kSaveDelay);
    save_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->save_pending_ = false;
      if (!ec) self->ledger_->save_now("batch");
    });
  }

  // --- registry refresh -------------------------------------------------------------------

  // Runs the due refreshes (all when forced), then `done` on the strand.
  void refresh(bool force, std::function<void()> done) {
    const std::int64_t now = now_ms();
    const bool heating_due = heating_.refresh_due(now, force);
    const bool electric_due = electric_.refresh_due(now, force);
    auto remaining = std::make_shared<int>(1 + (heating_due ? 1 : 0) + (electric_due ? 1 : 0));
    auto step = [remaining, done = std::move(done)]() {
      if (--*remaining == 0 && done) done();
    };
    if (heating_due) {
      heating_.refreshed_at = now;  // before the attempt, as the legacy agent did
      fetch_heating_selection(ws(), heating_labels_, heating_cap_,
                              [self = shared_from_this(), step](auto selection) {
                                if (selection) self->heating_selection_ = std::move(*selection);
                                step();
                              });
    }
    if (electric_due) {
      fetch_electric_selection(ws(), electric_label_,
                               [self = shared_from_this(), step](auto selection) {
                                 if (selection) {
                                   self->use_electric_selection(std::move(*selection));
                                   self->electric_.refreshed_at = now_ms();  // on success only
                                 }
                                 step();
                               });
    }
    step();
  }

  void use_electric_selection(ElectricSelection selection) {
    const bool retired = ledger_->with([&](HeatingTracker&, ElectricTracker& electric) {
      const std::int64_t now = now_ms();
      bool any = false;
      for (const auto& [id, d] : electric_selection_) {
        if (selection.count(id) == 0) any |= electric.retire(id, now);
      }
      return any;
    });
    if (retired) ledger_->save();  // a retirement is a state change: written through
    electric_selection_ = std::move(selection);
    log::info("Electric usage registry refreshed",
              log::Fields().add("entities", electric_selection_.size()));
  }

  void schedule_refresh(milliseconds delay) {
    if (stopped_) return;
    refresh_timer_.expires_after(delay);
    refresh_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      std::int64_t period = self->heating_.refresh_ms;
      if (self->electric_.enabled) period = std::min(period, self->electric_.refresh_ms);
      if (!self->conn_->ready()) return self->schedule_refresh(milliseconds(period));
      const std::uint64_t session = self->conn_->ready_count();
      self->refresh(false, [self, session, period] {
        if (!self->subscribed_) self->subscribe(session);
        self->schedule_refresh(milliseconds(period));
      });
    });
  }

  // --- seeding and polling ----------------------------------------------------------------

  void seed(const std::function<void()>& done) {
    StateReads reads;
    if (heating_.enabled) {
      ledger_->with([&](const HeatingTracker& heating, const ElectricTracker&) {
        for (const auto& [id, label] : heating_selection_) {
          if (heating.needs_seed(id)) reads[id].heating = true;
        }
      });
    }
    if (electric_.enabled) {
      for (const auto& [id, d] : electric_selection_) reads[id].electric = true;
    }
    read_states(std::move(reads), ObservationSource::seed, [self = shared_from_this()] {
      log::info("Heating usage seeded initial entity states",
                log::Fields().add("entities", self->heating_selection_.size()));
      log::info("Electric usage seeded initial entity states",
                log::Fields().add("entities", self->electric_selection_.size()));
      self->ledger_->save_now("seed");
    });
    // Subscribing does not wait for the seeding: events that arrive meanwhile are not missed,
    // and an event older than a seeded state is ignored as out of order.
    done();
  }

  std::int64_t poll_period_ms() const {
    std::int64_t p = heating_.poll_ms;
    if (electric_.enabled)
      p = heating_.enabled ? std::min(p, electric_.poll_ms) : electric_.poll_ms;
    return p;
  }

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
    StateReads reads;
    if (heating_.poll_due(now)) {
      heating_.polled_at = now;
      for (const auto& [id, label] : heating_selection_) reads[id].heating = true;
    }
    if (electric_.poll_due(now)) {
      electric_.polled_at = now;
      for (const auto& [id, d] : electric_selection_) reads[id].electric = true;
    }
    read_states(std::move(reads), ObservationSource::poll, [self = shared_from_this()] {
      self->ledger_->save_now("poll");
      self->schedule_poll();
    });
  }

  // Reads each wanted entity's state over REST, one at a time, and observes it: a seed at HA's
  // last_updated (else last_changed), a poll at "now". Then `done`, on the strand.
  void read_states(StateReads reads, ObservationSource source, std::function<void()> done) {
    auto shared = std::make_shared<const StateReads>(std::move(reads));
    read_state(shared, shared->begin(), source, std::move(done));
  }

  void read_state(std::shared_ptr<const StateReads> reads, StateReads::const_iterator next,
                  ObservationSource source, std::function<void()> done) {
    if (stopped_ || next == reads->end() || (conn_ && !conn_->ready())) return done();
    const std::string id = next->first;
    ha_client::get_state(io_, ha_, id,
                         [self = shared_from_this(), reads = std::move(reads), next, source,
                          done = std::move(done), id](const std::string& e, const json& state) {
                           asio::post(self->strand_, [=] {
                             if (e.empty()) {
                               const std::int64_t t = source == ObservationSource::seed
                                                          ? telemetry::observation_time(
                                                                state.value("last_updated", json()),
                                                                state.value("last_changed", json()))
                                                          : now_ms();
                               self->observe_state(id, state, next->second, source, t);
                             }
                             self->read_state(reads, std::next(next), source, done);
                           });
                         });
  }

  void observe_state(const std::string& id, const json& state, Wanted wanted,
                     ObservationSource source, std::int64_t t) {
    const bool heating = wanted.heating && heating_.enabled;
    const bool electric = wanted.electric && electric_.enabled;
    // An entity's held events first: this observation would otherwise overtake them and have
    // them ignored as out of order.
    if (heating && process_held(throttle_.take_entity(id, now_ms()))) save_soon();
    // A state change is written through; same-state observations are saved once at the end of
    // the seed or poll run.
    ledger_->record(id, [&](HeatingTracker& h, ElectricTracker& e) {
      bool changed = false;
      if (heating) {
        auto it = heating_selection_.find(id);
        if (it != heating_selection_.end()) {
          changed |=
              h.observe(id, it->second, telemetry::extract_heating_snapshot(state), t, source);
        }
      }
      if (electric) {
        auto it = electric_selection_.find(id);
        if (it != electric_selection_.end()) {
          changed |= e.observe(it->second, state.value("state", ""), t);
        }
      }
      return changed;
    });
  }

  asio::io_context& io_;
  Strand strand_;
  asio::steady_timer poll_timer_;
  asio::steady_timer refresh_timer_;
  asio::steady_timer throttle_timer_;
  asio::steady_timer save_timer_;
  const ha_client::HaClientConfig ha_;
  const std::shared_ptr<UsageLedger> ledger_;
  std::shared_ptr<ha_client::HaConnection> conn_;
  std::atomic<bool> stopped_{false};

  // Strand only.
  const std::vector<std::string> heating_labels_;
  const std::size_t heating_cap_;
  std::string electric_label_;
  UsageCadence heating_;
  UsageCadence electric_;
  bool subscribed_ = false;
  bool save_pending_ = false;
  HeatingSelection heating_selection_;
  ElectricSelection electric_selection_;
  telemetry::EventThrottle throttle_;
};

}  // namespace

std::shared_ptr<UsageTracker> make_usage_tracker(const Options& options, const Environment& env,
                                                 ha_client::HaClientConfig ha,
                                                 boost::asio::io_context& io,
                                                 std::shared_ptr<UsageLedger> ledger) {
  return std::make_shared<Tracker>(options, env, std::move(ha), io, std::move(ledger));
}

}  // namespace dinodia::agent
