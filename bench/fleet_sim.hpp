#pragma once
// A fleet of simulated hubs, each running the agent's real sync (agent/platform_sync.hpp, the
// delays of agent/sync_scheduler.hpp, the platform_client signing and bodies, a StateStore and
// TokenRegistry of its own) against the fake platform's rules (tests/fakes/fake_platform.hpp)
// in-process, on a simulated clock: one priority queue of (time, hub) events, no threads. An
// origin outage is answered by the in-process transport as timeouts or 503s. Results and how
// to run it: bench/README.md#fleet-simulation.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dinodia::fleet_sim {

enum class Scenario {
  primary_outage,  // the primary origin: timeouts, then 503s
  canary_outage,   // the canary origin only; hubs with a canary fall back within the cycle
  clock_skew,      // as primary_outage, with a share of the hubs' clocks off by minutes
};

enum class Policy {
  // 0.4.17's timing: every 2 min + 0-60 s after any cycle, no back-off (ScheduleSettings::back_off
  // false), and the Date header withheld from the cycle, as 0.4.17 never reads it. The cycle itself
  // is the agent's (0.4.17 has no canary origin: that scenario has no legacy run).
  legacy,
  agent,  // the agent's ScheduleSettings as the add-on runs them
};

const char* to_string(Scenario scenario);
const char* to_string(Policy policy);

struct Config {
  Scenario scenario = Scenario::primary_outage;
  Policy policy = Policy::agent;
  int hubs = 10000;
  std::uint64_t seed = 20;
  // The fleet at the cutover: each hub starts the agent with the token state the 0.4.17 agent
  // left (imported as agent/agent.cpp imports the legacy file: sync secret, hashes, version),
  // its token published at a time spread over the platform's hour of rotation, so that
  // rotations fall before, during and after the outage. new_install_share of the hubs were never
  // paired and pair at their first cycle.
  double new_install_share = 0.02;
  // Simulated seconds from the start. Hubs start spread over one mean cycle (2.5 min); the steady
  // rate is measured from steady_from_s to the outage.
  std::int64_t boot_spread_s = 150;
  std::int64_t steady_from_s = 180;
  std::int64_t outage_start_s = 330;
  std::int64_t outage_s = 600;
  std::int64_t timeout_phase_s = 300;  // the outage's first part: no answer (timeouts); then 503
  std::int64_t after_s = 300;          // simulated after the recovery
  double canary_share = 0.2;           // canary_outage: hubs configured with a canary origin
  double skew_share = 0.05;            // clock_skew: hubs whose clock is off
  std::int64_t skew_min_s = 200;       // ... by ±[skew_min_s, skew_max_s]
  std::int64_t skew_max_s = 600;
  std::int64_t request_timeout_ms = 15000;   // platform_client TransportOptions::total_timeout
  std::int64_t answer_latency_ms = 80;       // a request the platform answers
  std::int64_t unavailable_latency_ms = 30;  // a 503 from the origin's front
  std::int64_t window_s = 10;                // the rate windows

  std::int64_t recovery_s() const { return outage_start_s + outage_s; }
  std::int64_t end_s() const { return recovery_s() + after_s; }
};

// Requests that arrived at each origin in one window.
struct Window {
  std::int64_t start_s = 0;
  std::int64_t primary = 0;
  std::int64_t canary = 0;
};

struct Report {
  Config config;
  // Requests per second to any origin (pair and token-state); steady = the fleet's whole rate
  // from steady_from_s to the outage.
  double steady_rps = 0;
  double outage_mean_rps = 0;
  double outage_peak_rps = 0;  // the busiest window of the outage
  double after_peak_rps = 0;   // the busiest window from the recovery to the end
  double after_mean_rps = 0;   // over the first five minutes after the recovery
  // The same for the primary origin alone (differs from the above in canary_outage only).
  double primary_steady_rps = 0;
  double primary_outage_mean_rps = 0;
  double primary_outage_peak_rps = 0;
  double primary_after_peak_rps = 0;
  // Seconds from the recovery until every hub had completed a successful cycle after it;
  // nullopt when some hub never did before the end (hubs_not_synced of them).
  std::optional<double> all_synced_after_s;
  double mean_synced_after_s = 0;  // over the hubs that did
  std::int64_t hubs_not_synced = 0;
  // canary_outage: seconds from the recovery until every canary hub had an answer from the
  // canary again.
  std::optional<double> canary_back_after_s;
  // Times a token the platform had published to clients (or still honours in its grace) was not
  // in the hub's accepted set right after a platform answer. Must stay 0.
  std::int64_t published_token_rejections = 0;
  // Tokens the platform published during the run (rotations acknowledged, first tokens of new
  // installs): what the check above had to hold through.
  std::int64_t token_publications = 0;
  // Requests whose nonce the platform had seen before, and replays it refused. Must stay 0.
  std::int64_t nonce_reuses = 0;
  std::int64_t requests = 0;
  std::int64_t cycles = 0;
  std::int64_t failed_cycles = 0;
  std::int64_t cycle_exceptions = 0;
  double wall_seconds = 0;
  std::vector<Window> windows;

  double ratio(double rps) const { return steady_rps > 0 ? rps / steady_rps : 0; }
};

Report run(const Config& config);

}  // namespace dinodia::fleet_sim
