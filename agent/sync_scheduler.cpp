#include "agent/sync_scheduler.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/process_limits.hpp"
#include "common/stop_thread.hpp"

namespace dinodia::agent {

using std::chrono::milliseconds;

ScheduleSettings schedule_settings(int interval_minutes, std::optional<int> override_seconds) {
  ScheduleSettings s;
  if (override_seconds) {
    s.first_min = milliseconds(200);
    s.first_max = milliseconds(1000);
    s.interval = milliseconds(std::int64_t{*override_seconds} * 1000);
    s.jitter_max = milliseconds(0);
    s.backoff_base = milliseconds(500);
    s.backoff_min = milliseconds(200);
    return s;
  }
  const int minutes = std::max(2, interval_minutes);
  s.interval = milliseconds(std::int64_t{minutes} * 60000);
  return s;
}

SyncDelays::SyncDelays(ScheduleSettings settings, std::uint64_t seed)
    : settings_(settings), rng_(seed) {}

milliseconds SyncDelays::first_delay() {
  std::uniform_int_distribution<std::int64_t> d(settings_.first_min.count(),
                                                settings_.first_max.count());
  return milliseconds(d(rng_));
}

milliseconds SyncDelays::after_cycle(CycleOutcome outcome) {
  consecutive_failures_ = outcome == CycleOutcome::ok ? 0 : consecutive_failures_ + 1;
  return next_delay(outcome, consecutive_failures_);
}

milliseconds SyncDelays::next_delay(CycleOutcome outcome, int consecutive_failures) {
  const auto regular = [this] {
    std::int64_t jitter = 0;
    if (settings_.jitter_max.count() > 0) {
      std::uniform_int_distribution<std::int64_t> d(0, settings_.jitter_max.count() - 1);
      jitter = d(rng_);
    }
    return settings_.interval + milliseconds(jitter);
  };
  if (outcome == CycleOutcome::ok || outcome == CycleOutcome::config || !settings_.back_off) {
    return regular();
  }
  // Back-off (docs/platform-protocol.md#errors): the n-th failure in a row waits a random delay
  // in [c/2, c], c = backoff_base * 2^(n-1) (5, 10, 20, 40, 80 s), so a blip is retried within
  // seconds; once c reaches the interval the hub is back on its regular cadence. Full jitter up
  // to the interval instead kept a fleet in a long outage retrying every 60 s on average: 2.8x
  // the steady rate for the whole outage, and 2.4x in the busiest 10 s after it
  // (bench/README.md#fleet-simulation).
  const int exponent = std::clamp(consecutive_failures - 1, 0, 20);
  const std::int64_t ceiling = settings_.backoff_base.count() * (std::int64_t{1} << exponent);
  if (ceiling >= settings_.interval.count()) return regular();
  const std::int64_t floor = std::max(settings_.backoff_min.count(), ceiling / 2);
  std::uniform_int_distribution<std::int64_t> d(std::min(floor, ceiling), ceiling);
  return milliseconds(d(rng_));
}

SyncScheduler::SyncScheduler(PlatformSync& sync, ScheduleSettings settings)
    : sync_(sync), delays_(settings, std::random_device{}()) {}

SyncScheduler::~SyncScheduler() {
  stop(std::chrono::hours(1));
}

void SyncScheduler::start(std::optional<milliseconds> first_delay) {
  const milliseconds delay = first_delay ? *first_delay : delays_.first_delay();
  const ScheduleSettings& settings = delays_.settings();
  log::info(
      "Platform sync scheduled",
      log::Fields()
          .add("everyMinutes", static_cast<double>(settings.interval.count()) / 60000.0)
          .add("jitterSeconds", static_cast<std::int64_t>(settings.jitter_max.count() / 1000)));
  thread_ = std::thread([this, delay] { run(delay); });
}

void SyncScheduler::run(milliseconds first_delay) {
  milliseconds delay = first_delay;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, delay, [this] { return stopping_; })) break;
    }
    CycleResult result;
    try {
      result = sync_.run_cycle();
    } catch (const std::exception& e) {
      log::error("Platform sync failed", log::Fields().add("error", e.what()));
      result = {CycleOutcome::retry, e.what()};
    }
    delay = delays_.after_cycle(result.outcome);
    {
      std::lock_guard lock(mutex_);
      ++cycles_done_;
    }
    cv_.notify_all();
    if (observer_) observer_(result);
    // What the cycle freed (the CA store and TLS state of each request, the request and answer
    // JSON) and what the usage tracker freed since the last cycle (registry refreshes) stays
    // resident otherwise: glibc returns only the top of a heap by itself, so the freed pages
    // below a block still in use are kept for good (bench/README.md, "Home configuration
    // memory"). A few milliseconds every two minutes.
    process::release_free_memory();
  }
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
  }
  cv_.notify_all();
}

bool SyncScheduler::wait_first_cycle(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return cycles_done_ > 0 || finished_; });
}

bool SyncScheduler::stop(milliseconds timeout) {
  return threads::stop_thread(thread_, mutex_, cv_, stopping_, finished_, timeout);
}

}  // namespace dinodia::agent
