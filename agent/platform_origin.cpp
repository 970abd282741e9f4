#include "agent/platform_origin.hpp"

#include "platform_client/platform_api.hpp"
#include "platform_client/url.hpp"

namespace dinodia::agent {

namespace pc = platform_client;

PlatformOrigin platform_origin(const std::string& base_url, std::string_view token_state_endpoint,
                               bool canary) {
  PlatformOrigin o;
  o.canary = canary;
  const auto url = pc::parse_url(base_url);
  if (!url) {
    o.origin = base_url;
    return o;
  }
  o.origin = url->origin();
  o.pair_url = pc::pair_url(*url);
  o.token_state_url = pc::token_state_url(*url, token_state_endpoint);
  return o;
}

std::string origin_of(const std::string& base_url) {
  auto url = pc::parse_url(base_url);
  return url ? url->origin() : base_url;
}

}  // namespace dinodia::agent
