#pragma once
// The Home Assistant side of usage tracking: one WebSocket connection to HA that feeds the
// heating and electric trackers in the UsageLedger. It refreshes which entities are tracked from
// HA's registries, seeds their states over REST on every (re)connect, subscribes to
// state_changed, and polls every tracked entity's state.
//
// One poll loop and one refresh loop for the process lifetime: they keep ticking while HA is away
// (a tick then does nothing) instead of multiplying on reconnect, and polling does not depend on
// subscribe_events succeeding. The poll honours both poll intervals by ticking on the shorter one
// and skipping a kind whose own interval has not passed. Observation times are HA's, clamped to
// "now" (a poll is stamped "now"), so lastSeenAt is never in the future. Heating events inside
// heating_usage_min_process_interval_ms are held, not dropped, and all processed in order by
// their own timestamps. Same-state observations are saved in batches, at most 1 s later.
//
// Callback style: every handler runs on one strand of the bridge's io_context; the ledger's
// mutex is the only thing shared with other threads.
#include <memory>

#include "agent/environment.hpp"
#include "agent/options.hpp"
#include "agent/usage_ledger.hpp"
#include "ha_client/ha_client.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::agent {

class UsageTracker {
 public:
  virtual ~UsageTracker() = default;
  // Opens the connection and starts the loops. Call once.
  virtual void start() = 0;
  // Closes the connection and cancels the loops (waits up to 2 s for the strand). Idempotent.
  virtual void stop() = 0;
};

// Makes no network call until start(). DINODIA_TELEMETRY_POLL_SECONDS (env) replaces both poll
// intervals, which are otherwise the options' clamped to 60..3600 s.
std::shared_ptr<UsageTracker> make_usage_tracker(const Options& options, const Environment& env,
                                                 ha_client::HaClientConfig ha,
                                                 boost::asio::io_context& io,
                                                 std::shared_ptr<UsageLedger> ledger);

}  // namespace dinodia::agent
