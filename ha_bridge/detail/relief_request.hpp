#pragma once
// Internal to ha_bridge: which relayed requests the kiosk-load relief may join or answer from
// memory, and under which key (docs/lan-bridge.md#kiosk-relief).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ha_bridge/detail/http_head.hpp"
#include "ha_bridge/path_policy.hpp"

namespace dinodia::ha_bridge::detail {

// What a held answer depends on besides the writes and the event stream (ReliefSignals).
enum ReliefDepends : unsigned {
  kOnStates = 1,
  kOnRegistry = 2,
  kOnConfig = 4,
};

struct ReliefRequest {
  // Method, forwarded path and query, and the request fields that can change Home Assistant's
  // answer; for POST /api/template the body is appended once it has been read.
  std::string key;
  unsigned depends = 0;
  std::uint64_t body_length = 0;  // POST /api/template: the Content-Length body still to key on
};

// The largest template body whose requests are relieved (the kiosk's is a few KiB).
inline constexpr std::uint64_t kReliefMaxTemplateBody = std::uint64_t{64} * 1024;

// The relief identity of a request that passed auth and the allow-list, or nothing when it is
// relayed as it is: a GET without a body, or a POST /api/template with a Content-Length body of
// at most kReliefMaxTemplateBody, whose every field is one the relief knows (Range, conditional
// requests, Cache-Control, cookies, Expect and anything else unusual: not relieved).
std::optional<ReliefRequest> relief_request(const RequestHead& head,
                                            const NormalisedTarget& target);

// Whether a request may change what Home Assistant answers: any method but GET and HEAD, except
// POST /api/template (which renders and changes nothing).
bool is_relief_write(http::verb method, std::string_view client_path);

}  // namespace dinodia::ha_bridge::detail
