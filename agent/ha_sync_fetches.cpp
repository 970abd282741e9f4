#include "agent/ha_sync_fetches.hpp"

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>

#include "telemetry/lan_address.hpp"

namespace dinodia::agent {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

// The network info request times out by itself after 2.5 s (as 0.4.17's); this only guards the
// wait.
constexpr milliseconds kLanWait{4000};
constexpr milliseconds kAreaCommandTimeout{15000};
constexpr milliseconds kAreaWait{16000};
// Before start the cycle is the first one of a hub with no stored hashes: its token-state gets
// the apps their first token, and port 8099 stays closed until it ends (at most 20 s,
// agent/agent.cpp). A live Home Assistant answers the area list on a fresh WebSocket within well
// under a second, and one whose Core is still starting refuses the upgrade at once; only a hung
// Core takes longer, and then it must not hold the first token back for 15 s. With the network
// info's 2.5 s the first cycle waits 7.5 s for Home Assistant at most
// (docs/compatibility.md#first-cycle).
constexpr milliseconds kFirstAreaCommandTimeout{5000};
constexpr milliseconds kFirstAreaWait{6000};

// Starts an operation with `start(loop, deliver)` and waits at most `wait` for the value it
// delivers. With `own` null the operation runs on `running`, whose thread runs it; otherwise the
// calling thread runs `own` itself until the value came or the time is up. Whatever is still
// pending stays on that loop: it ends by its own timeout the next time the loop runs, or is
// dropped with the loop.
template <typename T, typename Start>
std::optional<T> ask(asio::io_context& running, asio::io_context* own, Start start,
                     milliseconds wait) {
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  auto deliver = [p](T value) { p->set_value(std::move(value)); };
  if (!own) {
    start(running, std::move(deliver));
    if (f.wait_for(wait) != std::future_status::ready) return std::nullopt;
    return f.get();
  }
  own->restart();  // it stops whenever it runs out of work
  start(*own, std::move(deliver));
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (f.wait_for(milliseconds(0)) != std::future_status::ready &&
         own->run_one_until(deadline) > 0) {
  }
  if (f.wait_for(milliseconds(0)) != std::future_status::ready) return std::nullopt;
  return f.get();
}

}  // namespace

HaSyncFetches::HaSyncFetches(boost::asio::io_context& io, ha_client::HaClientConfig ha)
    : io_(io), own_io_(std::make_unique<asio::io_context>(1)), ha_(std::move(ha)) {}

HaSyncFetches::~HaSyncFetches() = default;

boost::asio::io_context* HaSyncFetches::own_loop() {
  if (before_start()) return own_io_.get();
  // Not needed again once the service runs: the resolver thread it may have started goes too.
  own_io_.reset();
  return nullptr;
}

std::optional<std::string> HaSyncFetches::lan_base_url() {
  return lan_address().url;
}

HaSyncFetches::LanLookup HaSyncFetches::lan_address() {
  if (!may_fetch()) return LanLookup{"stopped", std::nullopt};
  auto lan = ask<LanLookup>(
      io_, own_loop(),
      [this](asio::io_context& loop, auto deliver) {
        ha_client::get_network_info(
            loop, ha_, [deliver](const std::string& e, const nlohmann::json& v) {
              if (!e.empty()) return deliver(LanLookup{e, std::nullopt});
              deliver(LanLookup{"", telemetry::lan_base_url_from_network_info(v)});
            });
      },
      kLanWait);
  if (!lan) return LanLookup{"timeout", std::nullopt};  // not answered in time
  return std::move(*lan);
}

std::pair<std::string, nlohmann::json> HaSyncFetches::area_registry() {
  using Answer = std::pair<std::string, nlohmann::json>;
  if (!may_fetch()) return {"stopped", nlohmann::json()};
  asio::io_context* own = own_loop();
  const bool first = own != nullptr;
  auto answer = ask<Answer>(
      io_, own,
      [this, first](asio::io_context& loop, auto deliver) {
        ha_client::ws_command_once(loop, ha_, "config/area_registry/list", nlohmann::json::object(),
                                   first ? kFirstAreaCommandTimeout : kAreaCommandTimeout,
                                   [deliver](std::string e, nlohmann::json v) {
                                     deliver(Answer{std::move(e), std::move(v)});
                                   });
      },
      first ? kFirstAreaWait : kAreaWait);
  if (!answer) return {"timeout", nlohmann::json()};
  return std::move(*answer);
}

}  // namespace dinodia::agent
