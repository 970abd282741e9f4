#pragma once
// Wall-clock helpers. Time is 64-bit throughout, also where the C library's time_t is 32 bits
// (armhf), so no date after January 2038 comes out wrong. Timestamps on the wire are ISO-8601 UTC
// with milliseconds and `Z`, the shape JavaScript's Date.prototype.toISOString produces (legacy
// uploads use it).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dinodia::clock {

using TimePoint = std::chrono::system_clock::time_point;

// Where a component that must be testable against another time reads the wall clock: the platform
// sync (agent/platform_sync.hpp) signs and records with it, and bench/fleet_sim runs thousands of
// syncs on a simulated clock through it (bench/README.md#fleet-simulation). Production passes
// system_source(), which reads std::chrono::system_clock.
class Source {
 public:
  virtual ~Source() = default;
  virtual std::int64_t unix_millis() const = 0;
};
const Source& system_source();

std::int64_t unix_seconds(TimePoint t = std::chrono::system_clock::now());
std::int64_t unix_millis(TimePoint t = std::chrono::system_clock::now());
std::string iso8601(TimePoint t = std::chrono::system_clock::now());
std::string iso8601_from_millis(std::int64_t millis);
// Parses the ISO-8601 forms JavaScript's Date accepts in practice for our inputs:
// YYYY-MM-DDTHH:MM[:SS[.fff...]](Z|±HH:MM) and a bare date. Returns epoch milliseconds.
std::optional<std::int64_t> parse_iso8601_millis(std::string_view text);
// Formats epoch seconds as an RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(std::int64_t unix_seconds);
// Parses an RFC 7231 IMF-fixdate (`Date` response header). Returns epoch seconds.
std::optional<std::int64_t> parse_http_date(std::string_view text);

}  // namespace dinodia::clock
