#pragma once
// The Home Assistant reads a sync cycle makes before its request is signed: the Supervisor's
// network info (for the LAN address) and the area registry. Blocking with bounded waits, on the
// sync thread. Once the service runs, the requests run on the bridge's io_context (worker 0).
// Before that, the only cycle is the first one of a hub with no stored hashes, which runs before
// port 8099 opens and before the bridge's loops run (agent/agent.cpp): its requests run on a loop
// of this object's own that the sync thread drives while it waits, so that the first token-state
// after pairing already carries the LAN address and the areas (docs/compatibility.md#first-cycle).
// Nothing is asked after the service stopped.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ha_client/ha_client.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::agent {

class HaSyncFetches {
 public:
  HaSyncFetches(boost::asio::io_context& io, ha_client::HaClientConfig ha);
  ~HaSyncFetches();
  HaSyncFetches(const HaSyncFetches&) = delete;
  HaSyncFetches& operator=(const HaSyncFetches&) = delete;

  // true when the service starts, false when it stops (for good).
  void set_running(bool running) { phase_ = running ? Phase::running : Phase::stopped; }
  // Between the service's start and its stop.
  bool running() const { return phase_ == Phase::running; }
  // Before the service started: the first cycle of a hub with no stored hashes.
  bool before_start() const { return phase_ == Phase::before_start; }
  // False once the service stopped: nothing more is asked of Home Assistant then.
  bool may_fetch() const { return phase_ != Phase::stopped; }
  bool has_supervisor_token() const { return !ha_.supervisor_token.empty(); }

  // GET /network/info and the LAN base URL it gives; nullopt on any failure (2.5 s, the
  // request's own timeout; 4 s at most).
  std::optional<std::string> lan_base_url();
  // The same lookup with the reason it gave nothing, for the doctor (agent/doctor.hpp): `error`
  // is the Supervisor call's failure ("timeout" after 4 s), empty when the Supervisor answered;
  // `url` is empty when no interface has an address the platform accepts.
  struct LanLookup {
    std::string error;
    std::optional<std::string> url;
  };
  LanLookup lan_address();
  // config/area_registry/list over a one-off WebSocket: {error, result}, error "" on success
  // ("timeout" after 16 s; before the service started, after 6 s: the first token waits on it).
  std::pair<std::string, nlohmann::json> area_registry();

 private:
  enum class Phase { before_start, running, stopped };

  // The loop of this object's own before start; null once the service runs (the read then goes
  // to io_). Sync thread only.
  boost::asio::io_context* own_loop();

  boost::asio::io_context& io_;
  // Before start only, only ever touched by the sync thread (see above); released after.
  std::unique_ptr<boost::asio::io_context> own_io_;
  ha_client::HaClientConfig ha_;
  std::atomic<Phase> phase_{Phase::before_start};
};

}  // namespace dinodia::agent
