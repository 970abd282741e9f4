#include "bench/fleet_sim.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <string_view>
#include <utility>

#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "agent/platform_sync.hpp"
#include "agent/state_store.hpp"
#include "agent/sync_scheduler.hpp"
#include "agent/token_stores.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "ha_bridge/token_registry.hpp"
#include "platform_client/transport.hpp"
#include "tests/fakes/fake_platform.hpp"

namespace dinodia::fleet_sim {
namespace {

namespace fp = fake_platform;
namespace pc = platform_client;
using agent::CycleOutcome;
using agent::CycleResult;

// Simulated time 0 is this instant (2027-01-15), so that signed timestamps look like real ones.
constexpr std::int64_t kEpochMs = 1'800'000'000'000;
constexpr const char* kPrimary = "https://app.dinodiasmartliving.com";
constexpr const char* kCanary = "https://api-origin.dinodiasmartliving.com";

enum class OriginState { up, silent, unavailable };

class Fleet;

// The true time the running cycle has reached, as the platform sees it.
class PlatformClock final : public clock::Source {
 public:
  explicit PlatformClock(const std::int64_t& now_ms) : now_ms_(now_ms) {}
  std::int64_t unix_millis() const override { return kEpochMs + now_ms_; }

 private:
  const std::int64_t& now_ms_;
};

// A hub's own clock: the true time plus its skew.
class HubClock final : public clock::Source {
 public:
  HubClock(const std::int64_t& now_ms, std::int64_t skew_ms) : now_ms_(now_ms), skew_ms_(skew_ms) {}
  std::int64_t unix_millis() const override { return kEpochMs + now_ms_ + skew_ms_; }

 private:
  const std::int64_t& now_ms_;
  std::int64_t skew_ms_;
};

struct Hub;

// What PlatformSync talks to: answers from the fleet's platform at simulated time.
class SimTransport final : public pc::Transport {
 public:
  SimTransport(Fleet& fleet, Hub& hub) : fleet_(fleet), hub_(hub) {}
  pc::HttpResult post_json(const std::string& url, const std::string& body) override;
  pc::HttpResult get(const std::string&) override { return {}; }

 private:
  Fleet& fleet_;
  Hub& hub_;
};

// One hub: the agent's sync with its own state, as agent/agent.cpp wires it (no legacy file, no
// telemetry contributors).
struct Hub {
  Hub(Fleet& fleet, const std::int64_t& now_ms, agent::SyncSettings settings, std::int64_t skew_ms,
      const agent::ScheduleSettings& schedule, std::uint64_t seed)
      : serial(settings.serial),
        has_canary(!settings.canary_base_url.empty()),
        clock(now_ms, skew_ms),
        transport(fleet, *this),
        sync(std::move(settings), store, nullptr, tokens, transport, {}, clock),
        delays(schedule, seed) {}

  std::string serial;
  bool has_canary;
  agent::StateStore store{agent::StateStore::kInMemory};
  ha_bridge::TokenRegistry tokens;
  HubClock clock;
  SimTransport transport;
  agent::PlatformSync sync;
  agent::SyncDelays delays;
  std::int64_t first_ok_after_recovery_ms = -1;
  std::int64_t canary_answer_after_recovery_ms = -1;
};

class Fleet {
 public:
  explicit Fleet(const Config& config);
  Report run();
  pc::HttpResult post(Hub& hub, const std::string& url, const std::string& body);

 private:
  OriginState origin_state(bool canary, std::int64_t at_ms) const;
  void count(bool canary, std::int64_t at_ms);
  // Every token a client of `hub` may hold must be accepted by the hub's registry.
  void check_client_tokens(Hub& hub);
  double rate(std::int64_t from_s, std::int64_t to_s, bool primary_only) const;
  double peak(std::int64_t from_s, std::int64_t to_s, bool primary_only) const;

  Config config_;
  std::int64_t now_ms_ = 0;
  PlatformClock platform_clock_{now_ms_};
  fp::Platform platform_;
  std::vector<std::unique_ptr<Hub>> hubs_;
  std::vector<std::int64_t> boot_ms_;
  std::vector<Window> windows_;
  std::int64_t requests_ = 0;
  std::int64_t rejections_ = 0;
};

pc::HttpResult SimTransport::post_json(const std::string& url, const std::string& body) {
  return fleet_.post(hub_, url, body);
}

fp::Settings platform_settings(const PlatformClock& clock) {
  fp::Settings s;  // rotation every 60 min, 20 min grace, ±300 s: the platform's defaults
  s.clock = &clock;
  s.record_requests = false;
  return s;
}

Fleet::Fleet(const Config& config)
    : config_(config), platform_(platform_settings(platform_clock_)) {
  std::mt19937_64 rng(config.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  agent::ScheduleSettings schedule = agent::schedule_settings(2, std::nullopt);
  if (config.policy == Policy::legacy) schedule.back_off = false;
  windows_.resize(static_cast<std::size_t>(config.end_s() / config.window_s + 1));
  for (std::size_t w = 0; w < windows_.size(); ++w) {
    windows_[w].start_s = static_cast<std::int64_t>(w) * config.window_s;
  }
  hubs_.reserve(static_cast<std::size_t>(config.hubs));
  std::uniform_int_distribution<std::int64_t> token_age(0, 3599);
  for (int i = 0; i < config.hubs; ++i) {
    char serial[32];
    std::snprintf(serial, sizeof serial, "DIN-GB-%08d", i + 1);
    const std::string bootstrap = crypto::to_hex(crypto::random_bytes(24));
    const bool new_install = unit(rng) < config.new_install_share;
    nlohmann::json provision{{"serial", serial}, {"bootstrapSecret", bootstrap}};
    if (!new_install) provision["activeForSeconds"] = token_age(rng);
    platform_.provision(provision);
    agent::SyncSettings settings{serial, bootstrap, kPrimary, "", ""};
    if (config.scenario == Scenario::canary_outage && unit(rng) < config.canary_share) {
      settings.canary_base_url = kCanary;
    }
    std::int64_t skew_ms = 0;
    if (config.scenario == Scenario::clock_skew && unit(rng) < config.skew_share) {
      std::uniform_int_distribution<std::int64_t> magnitude(config.skew_min_s * 1000,
                                                            config.skew_max_s * 1000);
      skew_ms = magnitude(rng) * (unit(rng) < 0.5 ? -1 : 1);
    }
    hubs_.push_back(
        std::make_unique<Hub>(*this, now_ms_, std::move(settings), skew_ms, schedule, rng()));
    if (!new_install) {
      // What the 0.4.17 agent left: paired, version 1 applied and acknowledged.
      const std::string sync_secret = crypto::to_hex(crypto::random_bytes(24));
      platform_.set_sync_secret(serial, sync_secret);
      const std::string hash = crypto::sha256_hex(platform_.tokens_clients_may_hold(serial).at(0));
      Hub& hub = *hubs_.back();
      hub.store.import_state({hash}, 1, sync_secret, serial);
      agent::TokenStores(hub.store, nullptr, hub.tokens).serve_stored(true);
    }
    std::uniform_int_distribution<std::int64_t> boot(0, config.boot_spread_s * 1000 - 1);
    boot_ms_.push_back(boot(rng));
  }
}

OriginState Fleet::origin_state(bool canary, std::int64_t at_ms) const {
  const bool failing = config_.scenario == Scenario::canary_outage ? canary : !canary;
  if (!failing || at_ms < config_.outage_start_s * 1000 || at_ms >= config_.recovery_s() * 1000) {
    return OriginState::up;
  }
  return at_ms < (config_.outage_start_s + config_.timeout_phase_s) * 1000
             ? OriginState::silent
             : OriginState::unavailable;
}

void Fleet::count(bool canary, std::int64_t at_ms) {
  ++requests_;
  const auto w = static_cast<std::size_t>(at_ms / 1000 / config_.window_s);
  if (w >= windows_.size()) return;
  ++(canary ? windows_[w].canary : windows_[w].primary);
}

void Fleet::check_client_tokens(Hub& hub) {
  for (const std::string& token : platform_.tokens_clients_may_hold(hub.serial)) {
    if (!hub.tokens.accepts(token)) ++rejections_;
  }
}

pc::HttpResult Fleet::post(Hub& hub, const std::string& url, const std::string& body) {
  const bool canary = url.rfind(kCanary, 0) == 0;
  const bool pair = std::string_view(url).ends_with("/api/hub-agent/pair");
  const std::int64_t at = now_ms_;
  count(canary, at);
  pc::HttpResult result;
  const OriginState state = origin_state(canary, at);
  if (state == OriginState::silent) {
    // Nothing answers: the transport gives up at its total timeout.
    now_ms_ += config_.request_timeout_ms;
    result.error = "timeout";
    result.latency = std::chrono::milliseconds(config_.request_timeout_ms);
    return result;
  }
  fp::Response answer;
  std::int64_t latency = config_.unavailable_latency_ms;
  if (state == OriginState::unavailable) {
    answer = fp::envelope(503, "Service unavailable");
  } else {
    const int listener = canary ? 2 : 1;
    answer = pair ? platform_.pair(body, listener) : platform_.token_state(body, listener);
    latency = config_.answer_latency_ms;
    // The strictest moment: the platform may just have published a token, and the hub has not
    // read the answer yet.
    check_client_tokens(hub);
    if (canary && answer.status == 200 && at >= config_.recovery_s() * 1000 &&
        hub.canary_answer_after_recovery_ms < 0) {
      hub.canary_answer_after_recovery_ms = at;
    }
  }
  result.status = answer.status;
  result.body = std::move(answer.body);
  // 0.4.17 never reads the Date header; withholding it runs the agent's cycle without its clock
  // correction.
  if (config_.policy == Policy::agent) result.date_unix = platform_.now_ms() / 1000;
  result.latency = std::chrono::milliseconds(latency);
  now_ms_ += latency;
  return result;
}

double Fleet::rate(std::int64_t from_s, std::int64_t to_s, bool primary_only) const {
  std::int64_t n = 0;
  for (const Window& w : windows_) {
    if (w.start_s >= from_s && w.start_s + config_.window_s <= to_s) {
      n += w.primary + (primary_only ? 0 : w.canary);
    }
  }
  return to_s > from_s ? static_cast<double>(n) / static_cast<double>(to_s - from_s) : 0;
}

double Fleet::peak(std::int64_t from_s, std::int64_t to_s, bool primary_only) const {
  std::int64_t best = 0;
  for (const Window& w : windows_) {
    if (w.start_s >= from_s && w.start_s + config_.window_s <= to_s) {
      best = std::max(best, w.primary + (primary_only ? 0 : w.canary));
    }
  }
  return static_cast<double>(best) / static_cast<double>(config_.window_s);
}

Report Fleet::run() {
  const std::int64_t recovery_ms = config_.recovery_s() * 1000;
  const std::int64_t end_ms = config_.end_s() * 1000;
  Report report;
  report.config = config_;

  using Event = std::pair<std::int64_t, std::size_t>;  // (simulated ms, hub)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  for (std::size_t i = 0; i < hubs_.size(); ++i) {
    events.emplace(boot_ms_[i] + hubs_[i]->delays.first_delay().count(), i);
  }
  while (!events.empty() && events.top().first < end_ms) {
    const auto [at, i] = events.top();
    events.pop();
    Hub& hub = *hubs_[i];
    now_ms_ = at;
    CycleResult result;
    // As SyncScheduler::run: an exception counts as a failed cycle.
    try {
      result = hub.sync.run_cycle();
    } catch (const std::exception& e) {
      ++report.cycle_exceptions;
      result = {CycleOutcome::retry, e.what()};
    }
    ++report.cycles;
    if (result.outcome != CycleOutcome::ok) {
      ++report.failed_cycles;
    } else if (now_ms_ >= recovery_ms && hub.first_ok_after_recovery_ms < 0) {
      hub.first_ok_after_recovery_ms = now_ms_;
    }
    events.emplace(now_ms_ + hub.delays.after_cycle(result.outcome).count(), i);
  }

  const std::int64_t steady_from = std::min(config_.steady_from_s, config_.outage_start_s);
  const std::int64_t steady_to = config_.outage_start_s;
  const std::int64_t recovery = config_.recovery_s();
  report.steady_rps = rate(steady_from, steady_to, false);
  report.outage_mean_rps = rate(config_.outage_start_s, recovery, false);
  report.outage_peak_rps = peak(config_.outage_start_s, recovery, false);
  report.after_peak_rps = peak(recovery, config_.end_s(), false);
  report.after_mean_rps = rate(recovery, std::min(recovery + 300, config_.end_s()), false);
  report.primary_steady_rps = rate(steady_from, steady_to, true);
  report.primary_outage_mean_rps = rate(config_.outage_start_s, recovery, true);
  report.primary_outage_peak_rps = peak(config_.outage_start_s, recovery, true);
  report.primary_after_peak_rps = peak(recovery, config_.end_s(), true);

  std::int64_t latest_sync = 0, latest_canary = 0, total_sync = 0;
  bool canary_all_back = true;
  for (const auto& hub : hubs_) {
    if (hub->first_ok_after_recovery_ms < 0) {
      ++report.hubs_not_synced;
    } else {
      latest_sync = std::max(latest_sync, hub->first_ok_after_recovery_ms - recovery_ms);
      total_sync += hub->first_ok_after_recovery_ms - recovery_ms;
    }
    if (hub->has_canary) {
      if (hub->canary_answer_after_recovery_ms < 0) {
        canary_all_back = false;
      } else {
        latest_canary = std::max(latest_canary, hub->canary_answer_after_recovery_ms - recovery_ms);
      }
    }
  }
  if (report.hubs_not_synced == 0)
    report.all_synced_after_s = static_cast<double>(latest_sync) / 1000.0;
  const auto synced = static_cast<std::int64_t>(hubs_.size()) - report.hubs_not_synced;
  if (synced > 0)
    report.mean_synced_after_s =
        static_cast<double>(total_sync) / 1000.0 / static_cast<double>(synced);
  if (config_.scenario == Scenario::canary_outage && canary_all_back) {
    report.canary_back_after_s = static_cast<double>(latest_canary) / 1000.0;
  }
  report.published_token_rejections = rejections_;
  report.token_publications = platform_.publications();
  report.nonce_reuses = platform_.duplicate_nonce_attempts() + platform_.replays_rejected();
  report.requests = requests_;
  report.windows = windows_;
  return report;
}

}  // namespace

const char* to_string(Scenario scenario) {
  switch (scenario) {
    case Scenario::primary_outage:
      return "primary outage";
    case Scenario::canary_outage:
      return "canary outage";
    case Scenario::clock_skew:
      return "primary outage + skewed clocks";
  }
  return "?";
}

const char* to_string(Policy policy) {
  return policy == Policy::legacy ? "legacy" : "agent";
}

Report run(const Config& config) {
  // One thread and thousands of small databases: no SQLite mutexes, no memory statistics, and a
  // small lookaside per connection (the default, 120 KiB each, would take 1.2 GB for 10,000
  // hubs). Only takes effect before SQLite's first use in the process (SQLITE_MISUSE afterwards,
  // ignored: then the run is merely slower and bigger).
  static const bool sqlite_configured = [] {
    sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 128, 16);
    return true;
  }();
  (void)sqlite_configured;
  // A failing fleet logs a line per cycle; only errors are of interest here.
  const log::Level level = log::level();
  log::set_level(log::Level::error);
  const auto wall_start = std::chrono::steady_clock::now();
  Report report;
  try {
    Fleet fleet(config);
    report = fleet.run();
  } catch (...) {
    log::set_level(level);
    throw;
  }
  log::set_level(level);
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return report;
}

}  // namespace dinodia::fleet_sim
