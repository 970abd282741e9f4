#include "ha_bridge/upstream_target.hpp"

#include <stdexcept>

#include "common/text.hpp"

namespace dinodia::ha_bridge {

UpstreamTarget parse_upstream_url(std::string_view url) {
  const std::string shown(url);
  auto fail = [&](const std::string& why) {
    return std::invalid_argument("supervisor URL '" + shown + "' " + why +
                                 " (expected http://host[:port][/prefix])");
  };
  url = text::trim(url);
  if (!text::istarts_with(url, "http://")) throw fail("is not an http:// URL");
  url.remove_prefix(7);
  const std::size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  if (authority.find('@') != std::string_view::npos) throw fail("must not contain userinfo");
  if (rest.find_first_of("?#") != std::string_view::npos) {
    throw fail("must not contain a query or fragment");
  }

  UpstreamTarget target;
  std::string_view host = authority;
  if (auto colon = authority.rfind(':');
      colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    host = authority.substr(0, colon);
    std::string_view port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5) throw fail("has a bad port");
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') throw fail("has a bad port");
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) throw fail("has a bad port");
    target.port = static_cast<std::uint16_t>(value);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) throw fail("has no host");
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '[' || c == ']' || c == '\\') {
      throw fail("has a bad host");
    }
  }
  target.host = text::lower(host);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  target.path_prefix = std::string(rest);
  return target;
}

}  // namespace dinodia::ha_bridge
