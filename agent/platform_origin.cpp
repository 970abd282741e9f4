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
  o.pair_host = host_of(o.pair_url);
  o.token_state_host = host_of(o.token_state_url);
  return o;
}

std::string origin_of(const std::string& base_url) {
  auto url = pc::parse_url(base_url);
  return url ? url->origin() : base_url;
}

std::string host_of(const std::string& url) {
  auto parsed = pc::parse_url(url);
  if (!parsed) return url;
  std::string out = parsed->host;
  if (!parsed->default_port) out.append(":").append(std::to_string(parsed->port));
  return out;
}

const char* origin_role(const std::string& origin, const std::string& primary_base_url,
                        const std::string& canary_base_url) {
  if (!canary_base_url.empty() && origin == origin_of(canary_base_url)) return "canary";
  if (origin == origin_of(primary_base_url)) return "primary";
  return "previous";
}

}  // namespace dinodia::agent
