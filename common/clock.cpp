#include "common/clock.hpp"

#include <cstdio>

namespace dinodia::clock {
namespace {
// Days from civil (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// A UTC calendar date and time of day, from epoch seconds.
struct Utc {
  std::int64_t year;
  unsigned month;    // 1-12
  unsigned day;      // 1-31
  unsigned weekday;  // 0 = Sunday
  int hour, minute, second;
};

// Floor division and its remainder (always in [0, divisor)), for instants before 1970.
std::int64_t floor_div(std::int64_t value, std::int64_t divisor, std::int64_t& remainder) {
  std::int64_t quotient = value / divisor;
  remainder = value % divisor;
  if (remainder < 0) {
    remainder += divisor;
    quotient -= 1;
  }
  return quotient;
}

// The civil date is the inverse of days_from_civil (same source). gmtime_r is not used: on
// 32-bit ARM (armhf) the C library's time_t is 32 bits, so every date after January 2038 would
// come out wrong (docs/building.md, "ARM test suites").
Utc utc_from_seconds(std::int64_t unix_seconds) {
  std::int64_t second_of_day = 0;
  std::int64_t days = floor_div(unix_seconds, 86400, second_of_day);
  std::int64_t weekday = 0;
  floor_div(days + 4, 7, weekday);  // 1970-01-01 was a Thursday
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0),
          month,
          doy - (153 * mp + 2) / 5 + 1,
          static_cast<unsigned>(weekday),
          static_cast<int>(second_of_day / 3600),
          static_cast<int>(second_of_day / 60 % 60),
          static_cast<int>(second_of_day % 60)};
}

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}
class SystemSource final : public Source {
 public:
  std::int64_t unix_millis() const override { return clock::unix_millis(); }
};
}  // namespace

const Source& system_source() {
  static const SystemSource source;
  return source;
}

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
std::int64_t unix_millis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string iso8601_from_millis(std::int64_t millis) {
  std::int64_t ms = 0;
  const Utc t = utc_from_seconds(floor_div(millis, 1000, ms));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<long long>(t.year), t.month, t.day, t.hour, t.minute, t.second,
                static_cast<int>(ms));
  return buf;
}

std::string iso8601(TimePoint t) {
  return iso8601_from_millis(unix_millis(t));
}

std::optional<std::int64_t> parse_iso8601_millis(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  std::size_t pos = 10;
  std::int64_t millis = 0;
  std::int64_t offset_min = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!digits(s, pos, 2, h) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !digits(s, pos + 3, 2, mi)) {
      return std::nullopt;
    }
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, sec)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        std::int64_t scale = 100;
        std::size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (scale > 0) millis += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return std::nullopt;
      }
    }
    if (h > 24 || mi > 59 || sec > 60) return std::nullopt;
    if (pos == s.size()) {
      // No zone: JavaScript reads a date-time without offset as local time; the hub runs in
      // UTC containers, and every producer we talk to sends `Z` or an offset.
    } else if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh = 0, om = 0;
      std::int64_t sign = s[pos] == '-' ? -1 : 1;
      if (!digits(s, pos + 1, 2, oh)) return std::nullopt;
      std::size_t p = pos + 3;
      if (p < s.size() && s[p] == ':') ++p;
      if (!digits(s, p, 2, om)) return std::nullopt;
      offset_min = sign * (oh * 60 + om);
      pos = p + 2;
    } else {
      return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
  }
  std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  std::int64_t total = ((days * 24 + h) * 60 + mi - offset_min) * 60 + sec;
  return total * 1000 + millis;
}

std::string http_date(std::int64_t unix_seconds) {
  static constexpr const char* kWeekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  const Utc t = utc_from_seconds(unix_seconds);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02d:%02d:%02d GMT", kWeekdays[t.weekday],
                t.day, kMonths[t.month - 1], static_cast<long long>(t.year), t.hour, t.minute,
                t.second);
  return buf;
}

std::optional<std::int64_t> parse_http_date(std::string_view s) {
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() < 29 || s[3] != ',' || s[4] != ' ') return std::nullopt;
  int d = 0, y = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 5, 2, d) || !digits(s, 12, 4, y) || !digits(s, 17, 2, h) ||
      !digits(s, 20, 2, mi) || !digits(s, 23, 2, sec)) {
    return std::nullopt;
  }
  int mo = 0;
  for (int i = 0; i < 12; ++i) {
    if (s.substr(8, 3) == kMonths[i]) mo = i + 1;
  }
  if (mo == 0 || s.substr(26, 3) != "GMT") return std::nullopt;
  std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 24 + h) * 60 + mi) * 60 + sec;
}

}  // namespace dinodia::clock
