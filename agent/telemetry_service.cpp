#include "agent/telemetry_service.hpp"

#include <atomic>

#include "agent/area_snapshot_contributor.hpp"
#include "agent/electric_usage_contributor.hpp"
#include "agent/ha_sync_fetches.hpp"
#include "agent/heating_usage_contributor.hpp"
#include "agent/lan_address_contributor.hpp"
#include "agent/usage_ledger.hpp"
#include "agent/usage_tracker.hpp"
#include "common/log.hpp"

namespace dinodia::agent {
namespace {

using json = nlohmann::json;

class Service final : public TelemetryService {
 public:
  Service(const Options& o, const Environment& env, const ha_client::HaClientConfig& ha,
          boost::asio::io_context& io)
      : tracking_enabled_(o.heating_usage_tracking_enabled || o.electric_usage_tracking_enabled),
        electric_enabled_(o.electric_usage_tracking_enabled),
        ledger_(std::make_shared<UsageLedger>(o, env)),
        fetches_(io, ha),
        tracker_(make_usage_tracker(o, env, ha, io, ledger_)),
        lan_(fetches_),
        areas_(fetches_, o.ha_area_snapshot_refresh_minutes),
        heating_(*ledger_),
        electric_(*ledger_) {}

  void start() override {
    fetches_.set_running(true);
    if (!tracking_enabled_) {
      log::info("Usage tracking disabled; no Home Assistant tracker connection");
      return;
    }
    tracker_->start();
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    fetches_.set_running(false);
    tracker_->stop();
    ledger_->save_now("shutdown");
  }

  json status_json() const override {
    return ledger_->with(
        [&](const telemetry::HeatingTracker&, const telemetry::ElectricTracker& electric) {
          std::size_t dirty = 0;
          for (const auto& e : electric.entities()) dirty += e.dirty ? 1 : 0;
          for (const auto& e : electric.pending()) dirty += e.dirty ? 1 : 0;
          return json{{"enabled", electric_enabled_},
                      {"trackedEntities", electric.entities().size()},
                      {"pendingSegments", electric.pending().size()},
                      {"dirtyEntities", dirty},
                      {"lastResetAt",
                       electric.last_reset_at() ? json(*electric.last_reset_at()) : json(nullptr)}};
        });
  }

  std::vector<SyncContributor*> contributors() override {
    // The LAN address and the area fetch first: they may wait on HA, and everything read after
    // them is then as fresh as possible when the request is signed.
    return {&lan_, &areas_, &heating_, &electric_};
  }

 private:
  const bool tracking_enabled_;
  const bool electric_enabled_;
  std::atomic<bool> stopped_{false};
  const std::shared_ptr<UsageLedger> ledger_;
  HaSyncFetches fetches_;
  const std::shared_ptr<UsageTracker> tracker_;
  LanAddressContributor lan_;
  AreaSnapshotContributor areas_;
  HeatingUsageContributor heating_;
  ElectricUsageContributor electric_;
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
                                                         const ha_client::HaClientConfig& ha,
                                                         boost::asio::io_context& io) {
  return std::make_shared<Service>(options, env, ha, io);
}

}  // namespace dinodia::agent
