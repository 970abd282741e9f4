#pragma once
// The Home Assistant reads a sync cycle makes before its request is signed: the Supervisor's
// network info (for the LAN address) and the area registry. Blocking with bounded waits, on the
// sync thread; the requests themselves run on the bridge's io_context. Nothing is asked before
// the service started (the loop may not run yet) or after it stopped.
#include <atomic>
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

  void set_running(bool running) { running_ = running; }
  bool running() const { return running_; }
  bool has_supervisor_token() const { return !ha_.supervisor_token.empty(); }

  // GET /network/info and the LAN base URL it gives; nullopt on any failure (4 s at most).
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
  // ("timeout" after 16 s).
  std::pair<std::string, nlohmann::json> area_registry();

 private:
  boost::asio::io_context& io_;
  ha_client::HaClientConfig ha_;
  std::atomic<bool> running_{false};
};

}  // namespace dinodia::agent
