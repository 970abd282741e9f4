#include "agent/local_endpoints.hpp"

#include <utility>

#include "agent/sync_status_endpoint.hpp"

namespace dinodia::agent {

std::vector<ha_bridge::LocalRoute> local_routes(
    const Options& options, std::function<nlohmann::ordered_json()> sync_status) {
  std::vector<ha_bridge::LocalRoute> routes;
  routes.push_back(sync_status_route(options.sync_status_token, std::move(sync_status)));
  // Container HEALTHCHECK: needs no token and reveals nothing but "the process answers".
  routes.push_back({"GET",
                    "/_dinodia/health",
                    [](const ha_bridge::LocalRequest&, const ha_bridge::Responder& respond) {
                      ha_bridge::LocalResponse response;
                      response.body = R"({"ok":true})";
                      respond(std::move(response));
                    },
                    0,
                    {}});
  return routes;
}

}  // namespace dinodia::agent
