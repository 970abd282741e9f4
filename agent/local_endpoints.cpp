#include "agent/local_endpoints.hpp"

#include <utility>

namespace dinodia::agent {

std::vector<ha_bridge::LocalRoute> local_routes(const Options& /*options*/,
                                                const ha_bridge::TokenRegistry& /*tokens*/) {
  std::vector<ha_bridge::LocalRoute> routes;
  // Container HEALTHCHECK: needs no token and reveals nothing but "the process answers".
  routes.push_back({"GET", "/_dinodia/health",
                    [](ha_bridge::LocalRequest, ha_bridge::Responder respond) {
                      ha_bridge::LocalResponse response;
                      response.body = R"({"ok":true})";
                      respond(std::move(response));
                    },
                    0});
  return routes;
}

}  // namespace dinodia::agent
