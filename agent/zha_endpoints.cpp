#include "agent/zha_endpoints.hpp"

#include <optional>
#include <utility>

#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_bridge/hub_access.hpp"
#include "telemetry/zha.hpp"

namespace dinodia::agent {

namespace {

using json = nlohmann::json;
using ha_bridge::LocalRequest;
using ha_bridge::LocalResponse;
using ha_bridge::Responder;

constexpr auto kZhaTimeout = std::chrono::milliseconds(15000);
constexpr std::size_t kMaxBodyBytes = std::size_t{1024} * 1024;

std::string error_body(const telemetry::ZhaError& e) {
  return e.body();
}
const std::string kUnauthorized = telemetry::unauthorized_body();

std::string devices_body(const json& result) {
  return telemetry::zha_devices_body(result).dump();
}

LocalResponse reply(int status, std::string body) {
  LocalResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Every Zigbee route needs a hub token, checked before the body is read (the bridge runs this
// on the head alone), so the handlers below only ever see authorised requests.
ha_bridge::LocalAdmission hub_token_required(
    std::shared_ptr<const ha_bridge::TokenRegistry> tokens) {
  return [tokens = std::move(tokens)](const LocalRequest& req) -> std::optional<LocalResponse> {
    if (ha_bridge::hub_token_accepted(tokens.get(),
                                      text::bearer_token(req.header("authorization")))) {
      return std::nullopt;
    }
    return reply(401, kUnauthorized);
  };
}

LocalResponse error_reply(const std::string& error) {
  const telemetry::ZhaError mapped = telemetry::classify_zha_error(error);
  return reply(mapped.status, error_body(mapped));
}

// The mapped code plus a detail that never carries a credential (HA error messages do not).
void log_failure(const char* message, const std::string& error) {
  const telemetry::ZhaError mapped = telemetry::classify_zha_error(error);
  log::warn(message, log::Fields().add("code", mapped.code).add("detail", error));
}

struct Shared {
  ha_client::HaClientConfig ha;
  std::function<boost::asio::io_context&()> io;
};

void permit(const std::shared_ptr<Shared>& s, const LocalRequest& req, Responder respond) {
  // The size is checked here as well: the route limit is 0.4.17's (docs/compatibility.md#zigbee),
  // whatever the transport enforced.
  const bool too_large = req.body_too_large || req.body.size() > kMaxBodyBytes;
  telemetry::PermitBody body = telemetry::parse_permit_body(req.body, too_large);
  if (!body.value) {
    LocalResponse r = reply(400, body.error_body);
    r.close_connection = too_large;  // the rest of an oversized body was never read
    return respond(std::move(r));
  }
  const json raw = body.value->is_object() && body.value->contains("duration")
                       ? (*body.value)["duration"]
                       : json();
  log::info("Dinodia Zigbee permit requested",
            log::Fields().add("duration", raw.is_null() ? std::string("undefined") : raw.dump()));
  const int duration = telemetry::permit_duration(*body.value);
  ha_client::call_service(
      s->io(), s->ha, "zha", "permit", json{{"duration", duration}},
      [respond = std::move(respond), duration](const std::string& error, const json&) {
        if (!error.empty()) {
          log_failure("Dinodia Zigbee permit failed", error);
          return respond(error_reply(error));
        }
        respond(reply(200, telemetry::permit_ok_body(duration)));
      });
}

void devices(const std::shared_ptr<Shared>& s, const LocalRequest& /*req*/, Responder respond) {
  log::info("Dinodia Zigbee devices requested");
  ha_client::ws_command_once(
      s->io(), s->ha, "zha/devices", json::object(), kZhaTimeout,
      [respond = std::move(respond)](const std::string& error, const json& result) {
        if (!error.empty()) {
          log_failure("Dinodia Zigbee device list failed", error);
          return respond(error_reply(error));
        }
        respond(reply(200, devices_body(result)));
      });
}

void health(const std::shared_ptr<Shared>& s, const LocalRequest& /*req*/, Responder respond) {
  log::info("Dinodia Zigbee health requested");
  auto h = std::make_shared<telemetry::ZhaHealth>();
  h->supervisor_token_present = !s->ha.supervisor_token.empty();
  ha_client::ws_command_once(
      s->io(), s->ha, "config/device_registry/list", json::object(), kZhaTimeout,
      [s, h, respond = std::move(respond)](const std::string& error, json result) mutable {
        telemetry::set_registry_outcome(*h, error.empty() ? &result : nullptr, error);
        ha_client::ws_command_once(
            s->io(), s->ha, "zha/devices", json::object(), kZhaTimeout,
            [h, respond = std::move(respond)](const std::string& zha_error, const json&) {
              telemetry::set_zha_outcome(*h, zha_error.empty(), zha_error);
              respond(reply(200, telemetry::zha_health_body(*h)));
            });
      });
}

}  // namespace

std::vector<ha_bridge::LocalRoute> zha_routes(
    std::shared_ptr<const ha_bridge::TokenRegistry> tokens, ha_client::HaClientConfig ha,
    std::function<boost::asio::io_context&()> io) {
  const auto admit = hub_token_required(std::move(tokens));
  auto s = std::make_shared<Shared>(Shared{std::move(ha), std::move(io)});
  std::vector<ha_bridge::LocalRoute> routes;
  routes.push_back(
      {"POST", "/_dinodia/zha/permit",
       [s](const LocalRequest& req, Responder respond) { permit(s, req, std::move(respond)); },
       kMaxBodyBytes, admit});
  routes.push_back(
      {"GET", "/_dinodia/zha/devices",
       [s](const LocalRequest& req, Responder respond) { devices(s, req, std::move(respond)); },
       kMaxBodyBytes, admit});
  routes.push_back(
      {"GET", "/_dinodia/zha/health",
       [s](const LocalRequest& req, Responder respond) { health(s, req, std::move(respond)); },
       kMaxBodyBytes, admit});
  return routes;
}

}  // namespace dinodia::agent
