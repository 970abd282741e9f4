#pragma once
// Telemetry for the platform sync: the LAN base URL, heating and electric usage, the HA area
// snapshot. Each upload has its own SyncContributor; the usage ones are fed by one Home
// Assistant tracker connection (agent/usage_tracker.hpp) through what heating and electric share
// (agent/usage_ledger.hpp). This service owns them and their lifecycle.
//
// Kept from the design, piece by piece (the compatibility notes are in docs/compatibility.md):
// one poll loop and one refresh loop for the process lifetime (they do not multiply on reconnect)
// and polling does not depend on subscribe_events succeeding; observation times are clamped to
// "now" so lastSeenAt is never in the future; the poll honours
// electric_usage_poll_interval_seconds for electric entities: both intervals are honoured by
// polling on the shorter one and skipping a tracker whose own interval has not elapsed. Every
// observed state change (a new or re-areaed segment, an on/off/known change, a retirement) is
// written through to SQLite before the next one is handled, so a kill -9 right after it loses
// nothing; same-state observations are saved in batches (at most 1 s later), as the next
// observation recomputes their time from the stored state. Throttled heating events are all
// processed, in order, by their own timestamps.
//
// Threads: the tracker's HA callbacks run on the bridge's io_context, serialised on one strand;
// the sync thread calls the contributors (blocking, bounded HA fetches happen there, before the
// request is signed); the usage trackers are guarded by the ledger's one mutex.
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/environment.hpp"
#include "agent/options.hpp"
#include "agent/sync_contributor.hpp"
#include "ha_client/ha_client.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::agent {

class TelemetryService {
 public:
  virtual ~TelemetryService() = default;
  // Opens the HA tracker connection (if a tracker is enabled) and the loops.
  virtual void start() = 0;
  // Stops the connection and loops and flushes the usage state (SIGTERM). Idempotent.
  virtual void stop() = 0;
  // The `electricUsage` object of /_dinodia/sync-status (`enabled` reflects the option).
  virtual nlohmann::json status_json() const = 0;
  // One per upload, in the order the sync cycle calls them; they live as long as the service.
  virtual std::vector<SyncContributor*> contributors() = 0;
};

// How the agent reaches HA and the Supervisor (env DINODIA_SUPERVISOR_URL, SUPERVISOR_TOKEN,
// ws_auth_mode). Throws std::invalid_argument for a bad supervisor URL.
ha_client::HaClientConfig ha_client_config(const Options& options, const Environment& env);

// Until start() the service opens no tracker connection. A sync cycle before it (the first one of
// a hub with no stored hashes, run before port 8099 opens) carries the stored usage rows and
// reads the LAN address and the areas on a loop the sync thread runs itself
// (agent/ha_sync_fetches.hpp, docs/compatibility.md#first-cycle).
// Opens the usage store (<data_dir>/dinodia-agent.db) and imports the legacy JSON state files
// once. A store that cannot be opened is logged and the service runs without persistence.
std::shared_ptr<TelemetryService> make_telemetry_service(const Options& options,
                                                         const Environment& env,
                                                         const ha_client::HaClientConfig& ha,
                                                         boost::asio::io_context& io);

}  // namespace dinodia::agent
