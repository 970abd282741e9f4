#pragma once
// One platform origin the sync talks to (the primary platform_base_url, or the canary), with the
// base URL parsed once when the sync is built: the URLs of both routes and the origin text that
// history and logs show are fixed for the life of the process.
#include <string>
#include <string_view>

namespace dinodia::agent {

struct PlatformOrigin {
  std::string origin;    // scheme://host[:port], or the base as configured if it does not parse
  std::string pair_url;  // "" when the base is not an http(s) URL
  std::string token_state_url;  // "" when base and endpoint do not form an http(s) URL
  // host[:port] each route's requests go to, for the log: an absolute
  // platform_token_state_endpoint sends token-state elsewhere (docs/platform-protocol.md#urls).
  std::string pair_host;
  std::string token_state_host;
  bool canary = false;

  const char* role() const { return canary ? "canary" : "primary"; }
};

PlatformOrigin platform_origin(const std::string& base_url, std::string_view token_state_endpoint,
                               bool canary);

// The origin part (scheme://host[:port]) of a base URL, for history and status; the input if it
// does not parse.
std::string origin_of(const std::string& base_url);

// host[:port] (the port only when it is not the scheme's default) of a URL or origin; the input if
// it does not parse.
std::string host_of(const std::string& url);

// What an origin in the history is to the configured options: "primary" (platform_base_url),
// "canary" (platform_canary_base_url) or "previous" (neither any more).
const char* origin_role(const std::string& origin, const std::string& primary_base_url,
                        const std::string& canary_base_url);

}  // namespace dinodia::agent
