#include "ha_bridge/path_policy.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <unordered_map>

#include "common/text.hpp"

namespace dinodia::ha_bridge {
namespace {

// The WHATWG URL standard's percent-encode sets, for the bytes the parser can see here.
bool in_c0_control_set(unsigned char c) {
  return c < 0x20 || c > 0x7E;
}
bool in_query_set(unsigned char c) {
  return in_c0_control_set(c) || c == ' ' || c == '"' || c == '#' || c == '<' || c == '>';
}
bool in_special_query_set(unsigned char c) {
  return in_query_set(c) || c == '\'';
}
// Node 20's URL parser (ada) predates the standard adding '^' to this set: '^' stays as is.
bool in_path_set(unsigned char c) {
  return in_query_set(c) || c == '?' || c == '`' || c == '{' || c == '}';
}

void append_percent_encoded_byte(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[b >> 4]);
  out.push_back(kHex[b & 0x0F]);
}

// Node's HTTP parser hands req.url over as a latin1 string, and the URL parser then UTF-8
// encodes each character: a raw byte 0xE9 becomes "%C3%A9". We reproduce that for parity.
void append_encoded(std::string& out, unsigned char c, bool (*in_set)(unsigned char)) {
  if (c >= 0x80) {
    append_percent_encoded_byte(out, static_cast<unsigned char>(0xC0 | (c >> 6)));
    append_percent_encoded_byte(out, static_cast<unsigned char>(0x80 | (c & 0x3F)));
  } else if (in_set(c)) {
    append_percent_encoded_byte(out, c);
  } else {
    out.push_back(static_cast<char>(c));
  }
}

bool is_single_dot(std::string_view s) {
  return s == "." || text::iequals(s, "%2e");
}
bool is_double_dot(std::string_view s) {
  return s == ".." || text::iequals(s, ".%2e") || text::iequals(s, "%2e.") ||
         text::iequals(s, "%2e%2e");
}

bool is_slash(char c) {
  return c == '/' || c == '\\';
}

// The authority of a scheme-relative target ("//host:port/..."). We only need to know whether
// the WHATWG host parser would accept it: failure there made the legacy handler throw.
bool authority_is_valid(std::string_view authority) {
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    port = host.substr(close + 1);
    host = host.substr(0, close + 1);
    if (!port.empty()) {
      if (port.front() != ':') return false;
      port.remove_prefix(1);
    }
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return false;
  for (unsigned char c : host) {
    // Forbidden domain code points (a subset is enough: these requests end in 403 anyway).
    if (c <= 0x20 || c == '#' || c == '%' || c == '/' || c == ':' || c == '<' || c == '>' ||
        c == '?' || c == '@' || c == '\\' || c == '^' || c == '|' || c == 0x7F) {
      if (c == '%' || (c == ':' && host.front() == '[')) continue;
      return false;
    }
  }
  std::uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 65535) return false;
  }
  return true;
}

// Printable bytes the parser copies unchanged into a path and into a query alike; '%' and '\\'
// are left out too, since they can spell a dot segment or a separator.
bool is_plain(unsigned char c) {
  if (c <= 0x20 || c >= 0x7F) return false;
  switch (c) {
    case '"':
    case '#':
    case '%':
    case '\'':
    case '<':
    case '>':
    case '\\':
    case '`':
    case '{':
    case '}':
      return false;
    default:
      return true;
  }
}

// Almost every target a kiosk sends ("/api/states", "/api/camera_proxy/camera.x?token=...") has
// nothing for the parser to do: plain bytes, no empty or dot segment, no fragment. Such a target
// normalises to itself, without the parser's copies (the fuzz target checks that both agree).
std::optional<NormalisedTarget> normalise_plain_target(std::string_view target) {
  if (target.empty() || target.front() != '/') return std::nullopt;
  std::size_t query = std::string_view::npos;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const auto c = static_cast<unsigned char>(target[i]);
    if (c == '?' && query == std::string_view::npos) {
      query = i;
    } else if (!is_plain(c)) {
      return std::nullopt;
    }
  }
  const std::string_view path = target.substr(0, query);
  for (std::size_t start = 1; start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return std::nullopt;
    if (segment.empty() && end < path.size()) return std::nullopt;  // "//": collapsed
    start = end + 1;
  }
  NormalisedTarget out;
  out.pathname.assign(path);
  out.client_path.assign(path);
  if (query != std::string_view::npos && query + 1 < target.size()) {
    out.search.assign(target.substr(query));
  }
  return out;
}

}  // namespace

std::optional<NormalisedTarget> normalise_target(std::string_view target) {
  if (auto plain = normalise_plain_target(target)) return plain;
  return normalise_target_fully(target);
}

std::optional<NormalisedTarget> normalise_target_fully(std::string_view target) {
  // WHATWG: strip leading/trailing C0 controls and spaces, drop every tab and newline.
  while (!target.empty() && static_cast<unsigned char>(target.front()) <= 0x20) {
    target.remove_prefix(1);
  }
  while (!target.empty() && static_cast<unsigned char>(target.back()) <= 0x20) {
    target.remove_suffix(1);
  }
  std::string input;
  input.reserve(target.size());
  for (char c : target) {
    if (c != '\t' && c != '\n' && c != '\r') input.push_back(c);
  }
  // Legacy: only origin-form targets ("/...") reach the parser.
  if (input.empty() || input.front() != '/') return std::nullopt;

  std::size_t pos = 1;  // the relative state consumed the first '/'
  if (pos < input.size() && is_slash(input[pos])) {
    // Scheme-relative: "//host/rest" names a host; the path starts after the authority.
    while (pos < input.size() && is_slash(input[pos])) ++pos;
    const std::size_t start = pos;
    while (pos < input.size() && !is_slash(input[pos]) && input[pos] != '?' && input[pos] != '#') {
      ++pos;
    }
    if (!authority_is_valid(std::string_view(input).substr(start, pos - start))) {
      return std::nullopt;
    }
    // Path start state: one leading slash belongs to the path's first separator.
    if (pos < input.size() && is_slash(input[pos])) ++pos;
  }

  std::vector<std::string> segments;
  std::string buffer;
  bool in_query = false;
  std::string query;
  for (; pos <= input.size(); ++pos) {
    const bool at_end = pos == input.size();
    const char c = at_end ? '\0' : input[pos];
    if (at_end || is_slash(c) || c == '?' || c == '#') {
      const bool separator = !at_end && is_slash(c);
      if (is_double_dot(buffer)) {
        if (!segments.empty()) segments.pop_back();
        if (!separator) segments.emplace_back();
      } else if (is_single_dot(buffer)) {
        if (!separator) segments.emplace_back();
      } else {
        segments.push_back(buffer);
      }
      buffer.clear();
      if (c == '?') {
        in_query = true;
        ++pos;
      }
      if (!separator) break;
      continue;
    }
    append_encoded(buffer, static_cast<unsigned char>(c), in_path_set);
  }
  if (in_query) {
    for (; pos < input.size() && input[pos] != '#'; ++pos) {
      append_encoded(query, static_cast<unsigned char>(input[pos]), in_special_query_set);
    }
  }

  NormalisedTarget out;
  for (const auto& segment : segments) {
    out.pathname.push_back('/');
    out.pathname += segment;
  }
  if (out.pathname.empty())
    out.pathname.push_back('/');  // not = "/": GCC 12 -Wrestrict false positive
  for (char c : out.pathname) {
    if (c == '/' && !out.client_path.empty() && out.client_path.back() == '/') continue;
    out.client_path.push_back(c);
  }
  if (!query.empty()) out.search = "?" + query;
  return out;
}

bool names_hassio_service(std::string_view client_path) {
  constexpr std::string_view kServices = "/api/services/";
  constexpr std::string_view kHassio = "hassio";
  if (!text::istarts_with(client_path, kServices)) return false;
  std::string_view domain = client_path.substr(kServices.size());
  domain = domain.substr(0, domain.find('/'));
  // Compared as aiohttp's router (percent-decoding) and Home Assistant's service registry
  // (lowercasing) see it; a byte that cannot spell "hassio" ends the comparison.
  std::size_t n = 0;
  for (std::size_t i = 0; i < domain.size(); ++i, ++n) {
    char c = domain[i];
    if (c == '%' && i + 2 < domain.size()) {
      const int hi = text::hex_digit_value(domain[i + 1]);
      const int lo = text::hex_digit_value(domain[i + 2]);
      if (hi >= 0 && lo >= 0) {
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (n >= kHassio.size() || c != kHassio[n]) return false;
  }
  return n == kHassio.size();
}

bool names_action_config(std::string_view client_path) {
  std::string path(client_path);
  // Every round of decoding shortens a path that still has an escape; none left: done.
  for (;;) {
    std::string decoded;
    decoded.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
      const int hi =
          path[i] == '%' && i + 2 < path.size() ? text::hex_digit_value(path[i + 1]) : -1;
      const int lo = hi >= 0 ? text::hex_digit_value(path[i + 2]) : -1;
      if (lo >= 0) {
        decoded.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        decoded.push_back(path[i]);
      }
    }
    if (decoded.size() == path.size()) break;
    path = std::move(decoded);
  }
  // A decoded "%2F" may have made a run of '/' (collapsed like the relay's own path).
  path.erase(
      std::unique(path.begin(), path.end(), [](char a, char b) { return a == '/' && b == '/'; }),
      path.end());
  // In any case, as names_hassio_service compares.
  return text::istarts_with(path, "/api/config/script/config/") ||
         text::istarts_with(path, "/api/config/automation/config/");
}

AllowList::AllowList(const std::vector<std::string>& patterns) {
  static std::atomic<std::uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  patterns_.reserve(patterns.size());
  for (const auto& p : patterns) patterns_.emplace_back(p, std::regex::ECMAScript);
}

bool AllowList::allows(std::string_view client_path) const {
  // libstdc++'s regex engine recurses once per character a `.*` consumes; a ~26,000-character
  // path overflowed a thread stack (found by fuzzing). No Home Assistant path a client uses is
  // anywhere near this long, so longer ones are simply not allowed.
  if (client_path.size() > kMaxAllowListPathLength) return false;
  for (const auto& re : patterns_) {
    if (std::regex_search(client_path.begin(), client_path.end(), re)) return true;
  }
  return false;
}

bool AllowList::allows_remembered(const std::string& client_path) const {
  constexpr std::size_t kRemembered = 256;
  constexpr std::size_t kLongestRemembered = 256;
  struct Decisions {
    std::uint64_t list = 0;  // AllowList::id_; 0 is never one
    std::unordered_map<std::string, bool> by_path;
  };
  thread_local Decisions decisions;
  if (decisions.list != id_) {
    decisions.list = id_;
    decisions.by_path.clear();
  }
  if (auto it = decisions.by_path.find(client_path); it != decisions.by_path.end()) {
    return it->second;
  }
  const bool allowed = allows(client_path);
  if (client_path.size() <= kLongestRemembered) {
    if (decisions.by_path.size() >= kRemembered) decisions.by_path.clear();
    decisions.by_path.emplace(client_path, allowed);
  }
  return allowed;
}

}  // namespace dinodia::ha_bridge
