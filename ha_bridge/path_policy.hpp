#pragma once
// Request-target normalisation and the path allow-list (docs/compatibility.md#paths).
//
// The legacy agent parses req.url with the WHATWG URL parser against http://localhost, then
// collapses runs of '/'. We reproduce those decisions exactly (they decide what is allowed),
// including the quirk that a target starting with "//" is a scheme-relative URL whose first
// segment becomes the host. The normalised path is both what is checked and what is forwarded.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::ha_bridge {

struct NormalisedTarget {
  std::string pathname;     // WHATWG pathname: '\' → '/', dot segments (incl. %2e) resolved
  std::string client_path;  // pathname with runs of '/' collapsed: checked and forwarded
  std::string search;       // "" or "?..." as the WHATWG serialiser produces it
};

// Returns nullopt when the target is not origin-form ("*", "http://x/..", empty, or not
// starting with '/'): the caller answers 400 {"error":"Bad request."}.
std::optional<NormalisedTarget> normalise_target(std::string_view request_target);

// The whole parser, without normalise_target's shortcut for plain targets (for the fuzz target
// and the tests, which check that both agree).
std::optional<NormalisedTarget> normalise_target_fully(std::string_view request_target);

// Whether `client_path` (normalised) calls a service of the `hassio` domain:
// "/api/services/<domain>/..." where <domain>, percent-decoded and lowercased as Home Assistant
// treats it, is "hassio" (docs/http-input.md).
bool names_hassio_service(std::string_view client_path);

// Whether `client_path` (normalised) is where Home Assistant saves a script's or an
// automation's config, "/api/config/script/config/<id>" or "/api/config/automation/config/<id>",
// compared percent-decoded (repeatedly: a decoding proxy on the way must not make it one, runs
// of '/' collapsed, in any case) as Home Assistant's router sees it, or more. The relay reads such
// a body before relaying it (docs/http-input.md).
bool names_action_config(std::string_view client_path);

// ECMAScript regexes, matched with search semantics (JavaScript RegExp.test) against
// client_path only (no query). Construction throws std::regex_error on an invalid pattern; the
// options loader skips such patterns, with a warning, before we get here.
// Paths longer than this are never allowed (see AllowList::allows).
inline constexpr std::size_t kMaxAllowListPathLength = 4096;

class AllowList {
 public:
  explicit AllowList(const std::vector<std::string>& patterns);
  bool allows(std::string_view client_path) const;
  // The same answer, remembered per thread (the relay's workers): kiosks ask for the same few
  // paths all day, and a std::regex search per pattern per request cost microseconds. The
  // patterns never change while the list exists, so a remembered decision stays right.
  bool allows_remembered(const std::string& client_path) const;

 private:
  std::vector<std::regex> patterns_;
  // What a thread's remembered decisions belong to. Not the address: a list built where an
  // earlier one was destroyed would otherwise inherit that list's decisions.
  std::uint64_t id_ = 0;
};

}  // namespace dinodia::ha_bridge
