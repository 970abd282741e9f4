#pragma once
// Runs the platform sync on its own thread (docs/compatibility.md#sync-cadence): first run 2–6 s
// after start, then every platform_sync_interval_minutes plus 0–60 s jitter; runs never overlap.
// After a failed cycle the next one comes sooner: 5, 10, 20, 40, 80 s (each with jitter down to
// half), then the regular cadence again. DINODIA_SYNC_INTERVAL_SECONDS (tests, local runs)
// replaces the cadence: first run after 0.2–1 s, then every N s without jitter.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "agent/platform_sync.hpp"

namespace dinodia::agent {

struct ScheduleSettings {
  std::chrono::milliseconds first_min{2000};
  std::chrono::milliseconds first_max{6000};
  std::chrono::milliseconds interval{120000};
  std::chrono::milliseconds jitter_max{60000};  // 0 = none
  std::chrono::milliseconds backoff_base{5000};
  std::chrono::milliseconds backoff_min{1000};
  // false: a failed cycle waits a regular interval too, as the 0.4.17 agent does (the legacy
  // variant of bench/fleet_sim); the agent always backs off.
  bool back_off = true;
};

// interval_minutes from options (minimum 2, as legacy); override_seconds from the environment.
ScheduleSettings schedule_settings(int interval_minutes, std::optional<int> override_seconds);

// When the next cycle runs: the cadence and back-off policy alone, without the thread, so that
// the scheduler and bench/fleet_sim (thousands of hubs on a simulated clock) run the same code.
class SyncDelays {
 public:
  SyncDelays(ScheduleSettings settings, std::uint64_t seed);

  const ScheduleSettings& settings() const { return settings_; }
  // A random delay in [first_min, first_max].
  std::chrono::milliseconds first_delay();
  // After a cycle: counts consecutive failures (a success resets the count) and returns the
  // delay before the next cycle.
  std::chrono::milliseconds after_cycle(CycleOutcome outcome);
  // Delay before the next cycle after `outcome`, given the count of consecutive failures
  // including this one.
  std::chrono::milliseconds next_delay(CycleOutcome outcome, int consecutive_failures);

 private:
  ScheduleSettings settings_;
  std::mt19937_64 rng_;
  int consecutive_failures_ = 0;
};

class SyncScheduler {
 public:
  SyncScheduler(PlatformSync& sync, ScheduleSettings settings);
  ~SyncScheduler();
  SyncScheduler(const SyncScheduler&) = delete;
  SyncScheduler& operator=(const SyncScheduler&) = delete;

  // Called on the sync thread after every cycle, once wait_first_cycle() has been released, with
  // the cycle's result (the doctor reports after the first cycle and after failures,
  // agent/doctor_reporter.hpp). Must not block. Set it before start().
  void set_cycle_observer(std::function<void(const CycleResult&)> observer) {
    observer_ = std::move(observer);
  }

  // Starts the thread; the first cycle runs after `first_delay`, or a random delay in
  // [first_min, first_max] when not given.
  void start(std::optional<std::chrono::milliseconds> first_delay = std::nullopt);
  // Waits until the first cycle has finished; false on timeout.
  bool wait_first_cycle(std::chrono::milliseconds timeout);
  // Wakes the thread and joins it. A cycle in flight finishes its current request first (every
  // request has a total timeout); returns false if the thread did not end within `timeout`
  // (it is then detached and the caller should exit the process).
  bool stop(std::chrono::milliseconds timeout);

  // SyncDelays::next_delay of this scheduler. Public for tests.
  std::chrono::milliseconds next_delay(CycleOutcome outcome, int consecutive_failures) {
    return delays_.next_delay(outcome, consecutive_failures);
  }

 private:
  void run(std::chrono::milliseconds first_delay);

  PlatformSync& sync_;
  SyncDelays delays_;
  std::function<void(const CycleResult&)> observer_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool finished_ = false;
  int cycles_done_ = 0;
};

}  // namespace dinodia::agent
