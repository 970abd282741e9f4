#include "platform_client/url.hpp"

#include <cctype>
#include <vector>

#include "common/text.hpp"

namespace dinodia::platform_client {
namespace {

int default_port_for(std::string_view scheme) {
  return scheme == "https" ? 443 : 80;
}

// WHATWG treats '\' as '/' in special schemes and strips leading/trailing C0 controls and
// spaces, and removes tab/newline anywhere.
std::string clean_input(std::string_view in) {
  in = text::trim(in);
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (c == '\t' || c == '\n' || c == '\r') continue;
    out.push_back(c == '\\' ? '/' : c);
  }
  return out;
}

std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 1;  // path starts with '/'
  bool trailing_slash = false;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string segment(path.substr(pos, next - pos));
    std::string lowered = text::lower(segment);
    bool last = next == path.size();
    if (segment == "." || lowered == "%2e") {
      trailing_slash = last;
    } else if (segment == ".." || lowered == ".%2e" || lowered == "%2e." || lowered == "%2e%2e") {
      if (!out.empty()) out.pop_back();
      trailing_slash = last;
    } else {
      out.push_back(segment);
      trailing_slash = false;
    }
    pos = next + 1;
  }
  std::string result;
  for (const auto& s : out) {
    result.push_back('/');
    result.append(s);
  }
  if (trailing_slash || result.empty()) result.push_back('/');
  return result;
}

// Splits "path?query#fragment" into path and query, dropping the fragment.
void split_path_query(std::string_view rest, std::string& path, std::string& query) {
  std::size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::size_t q = rest.find('?');
  path = std::string(rest.substr(0, q));
  query = q == std::string_view::npos ? std::string() : std::string(rest.substr(q));
  if (query == "?") query.clear();  // an empty query serialises as "?" in WHATWG; harmless
}

bool parse_authority(std::string_view authority, Url& url) {
  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else {
    std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return false;
  for (char c : host) {
    if (c == ' ' || c == '/' || c == '?' || c == '#' || c == '<' || c == '>' || c == '%' ||
        static_cast<unsigned char>(c) < 0x20) {
      return false;
    }
  }
  url.host = text::lower(host);
  url.port = default_port_for(url.scheme);
  url.default_port = true;
  if (!port.empty()) {
    if (port.size() > 5) return false;
    int value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    if (value > 65535) return false;
    url.port = value;
    url.default_port = value == default_port_for(url.scheme);
  }
  return true;
}

// `rest` begins after "scheme:" with any number of slashes, as special schemes allow.
std::optional<Url> parse_after_scheme(std::string scheme, std::string_view rest) {
  Url url;
  url.scheme = std::move(scheme);
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (!parse_authority(authority, url)) return std::nullopt;
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  std::string path;
  split_path_query(tail, path, url.query);
  if (path.empty()) path.push_back('/');
  url.path = remove_dot_segments(path);
  return url;
}

// Returns the lowercased scheme if `text` starts with "<alpha>(alnum|+|-|.)*:", else "".
std::string leading_scheme(std::string_view text) {
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text.front()))) return {};
  for (std::size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == ':') return text::lower(text.substr(0, i));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return {};
    }
  }
  return {};
}

}  // namespace

std::string Url::origin() const {
  // Appended piece by piece: GCC 12 reports a false -Wrestrict for `":" + std::string` here.
  std::string out = scheme;
  out.append("://").append(host);
  if (!default_port) out.append(":").append(std::to_string(port));
  return out;
}

std::string Url::href() const {
  return origin() + path + query;
}

std::optional<Url> parse_url(std::string_view text) {
  std::string input = clean_input(text);
  std::string scheme = leading_scheme(input);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  return parse_after_scheme(scheme, std::string_view(input).substr(scheme.size() + 1));
}

std::optional<Url> resolve_url(const Url& base, std::string_view reference) {
  std::string ref = clean_input(reference);
  std::string scheme = leading_scheme(ref);
  if (!scheme.empty()) {
    if (scheme != "http" && scheme != "https") return std::nullopt;
    std::string_view rest = std::string_view(ref).substr(scheme.size() + 1);
    // WHATWG: "http:path" with the base's own special scheme is a relative reference.
    if (scheme == base.scheme && (rest.empty() || rest.front() != '/')) {
      return resolve_url(base, rest);
    }
    return parse_after_scheme(scheme, rest);
  }
  if (ref.rfind("//", 0) == 0) return parse_after_scheme(base.scheme, ref);
  Url url = base;
  if (ref.empty()) return url;
  if (ref.front() == '#') return url;
  std::string path, query;
  split_path_query(ref, path, query);
  if (ref.front() == '?') {
    url.query = query;
    return url;
  }
  url.query = query;
  if (path.front() == '/') {
    url.path = remove_dot_segments(path);
  } else {
    std::string merged = base.path.substr(0, base.path.rfind('/') + 1) + path;
    url.path = remove_dot_segments(merged);
  }
  return url;
}

}  // namespace dinodia::platform_client
