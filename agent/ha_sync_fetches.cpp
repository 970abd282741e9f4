#include "agent/ha_sync_fetches.hpp"

#include <chrono>
#include <future>
#include <memory>

#include "telemetry/lan_address.hpp"

namespace dinodia::agent {
namespace {

constexpr auto kLanWait = std::chrono::seconds(4);
constexpr auto kAreaCommandTimeout = std::chrono::milliseconds(15000);
constexpr auto kAreaWait = std::chrono::seconds(16);

}  // namespace

HaSyncFetches::HaSyncFetches(boost::asio::io_context& io, ha_client::HaClientConfig ha)
    : io_(io), ha_(std::move(ha)) {}

std::optional<std::string> HaSyncFetches::lan_base_url() {
  return lan_address().url;
}

HaSyncFetches::LanLookup HaSyncFetches::lan_address() {
  auto p = std::make_shared<std::promise<LanLookup>>();
  auto f = p->get_future();
  ha_client::get_network_info(io_, ha_, [p](const std::string& e, const nlohmann::json& v) {
    if (!e.empty()) return p->set_value(LanLookup{e, std::nullopt});
    p->set_value(LanLookup{"", telemetry::lan_base_url_from_network_info(v)});
  });
  if (f.wait_for(kLanWait) != std::future_status::ready) return LanLookup{"timeout", std::nullopt};
  try {
    return f.get();
  } catch (const std::future_error&) {
    // The loop went away with the request (shutdown): no answer.
    return LanLookup{"stopped", std::nullopt};
  }
}

std::pair<std::string, nlohmann::json> HaSyncFetches::area_registry() {
  auto p = std::make_shared<std::promise<std::pair<std::string, nlohmann::json>>>();
  auto f = p->get_future();
  ha_client::ws_command_once(io_, ha_, "config/area_registry/list", nlohmann::json::object(),
                             kAreaCommandTimeout, [p](std::string e, nlohmann::json v) {
                               p->set_value({std::move(e), std::move(v)});
                             });
  if (f.wait_for(kAreaWait) != std::future_status::ready) return {"timeout", nlohmann::json()};
  return f.get();
}

}  // namespace dinodia::agent
