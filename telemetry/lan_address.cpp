#include "telemetry/lan_address.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "common/text.hpp"

namespace dinodia::telemetry {
namespace {

using Json = nlohmann::json;

struct Candidate {
  std::array<std::uint8_t, 4> ip;
  std::string text;
  bool docker_looking;
  bool primary;
  bool has_gateway;
  int base;
  std::size_t order;
};

std::string strip_prefix(std::string_view s) {
  auto slash = s.find('/');
  return std::string(text::trim(s.substr(0, slash)));
}

// 0.4.17's candidate search: strings, arrays, and the address-like keys of objects, recursively.
void gather(const Json& v, std::vector<std::string>& out, int depth) {
  if (depth > 6) return;
  if (v.is_string()) {
    out.push_back(strip_prefix(v.get_ref<const std::string&>()));
  } else if (v.is_array()) {
    for (const auto& e : v) gather(e, out, depth + 1);
  } else if (v.is_object()) {
    for (const char* key : {"address", "addresses", "ip", "ip_address", "local_ip", "localIp"}) {
      auto it = v.find(key);
      if (it != v.end()) gather(*it, out, depth + 1);
    }
  }
}

bool truthy(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) return !it->get_ref<const std::string&>().empty();
  if (it->is_number()) return it->get<double>() != 0;
  return it->is_object() || it->is_array();
}

bool explicitly_false(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && !it->get<bool>();
}

const Json* interfaces_of(const Json& response) {
  if (!response.is_object()) return nullptr;
  auto data = response.find("data");
  if (data != response.end() && data->is_object()) {
    auto it = data->find("interfaces");
    if (it != data->end() && it->is_array()) return &*it;
  }
  auto it = response.find("interfaces");
  if (it != response.end() && it->is_array()) return &*it;
  return nullptr;
}

}  // namespace

std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view s) {
  std::array<std::uint8_t, 4> out{};
  std::size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return std::nullopt;
      ++pos;
    }
    std::size_t start = pos;
    unsigned value = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(s[pos] - '0');
      ++pos;
    }
    if (pos == start || value > 255) return std::nullopt;
    out[static_cast<std::size_t>(part)] = static_cast<std::uint8_t>(value);
  }
  if (pos != s.size()) return std::nullopt;
  return out;
}

bool is_platform_private_ipv4(const std::array<std::uint8_t, 4>& ip) {
  if (ip[0] == 10) return true;
  if (ip[0] == 172 && ip[1] >= 16 && ip[1] <= 31) return true;
  return ip[0] == 192 && ip[1] == 168;
}

bool is_hassio_internal_ipv4(const std::array<std::uint8_t, 4>& ip) {
  return ip[0] == 172 && ip[1] == 30 && (ip[2] == 32 || ip[2] == 33);
}

std::optional<std::string> lan_base_url_from_network_info(const Json& response) {
  const Json* interfaces = interfaces_of(response);
  if (interfaces == nullptr) return std::nullopt;

  std::vector<Candidate> candidates;
  for (const auto& iface : *interfaces) {
    if (!iface.is_object()) continue;
    // A disabled or disconnected interface may still list a stale static address.
    if (explicitly_false(iface, "enabled") || explicitly_false(iface, "connected")) continue;
    std::vector<std::string> found;
    for (const char* key : {"ipv4", "ipv4_addresses", "addr_info"}) {
      auto it = iface.find(key);
      if (it != iface.end()) gather(*it, found, 0);
    }
    bool has_gateway =
        truthy(iface, "gateway") || truthy(iface, "gateway_ipv4") || truthy(iface, "gw4");
    auto ipv4 = iface.find("ipv4");
    if (ipv4 != iface.end() && ipv4->is_object())
      has_gateway = has_gateway || truthy(*ipv4, "gateway");
    const bool primary = iface.value("primary", false) == true;
    for (auto& text : found) {
      auto ip = parse_ipv4(text);
      if (!ip || !is_platform_private_ipv4(*ip) || is_hassio_internal_ipv4(*ip)) continue;
      const bool docker = (*ip)[0] == 172 && (*ip)[1] >= 17 && (*ip)[1] <= 19;
      const int base = (*ip)[0] == 192 ? 30 : (*ip)[0] == 10 ? 20 : 10;
      candidates.push_back({*ip, text, docker, primary, has_gateway, base, candidates.size()});
    }
  }
  if (candidates.empty()) return std::nullopt;
  // Rank: a non-Docker-looking address always beats a Docker-looking one; then the primary
  // interface (the Supervisor's own choice), then an interface with a gateway, then the legacy
  // range preference; ties keep the order seen.
  auto key = [](const Candidate& c) {
    return std::make_tuple(!c.docker_looking, c.primary, c.has_gateway, c.base);
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const Candidate& a, const Candidate& b) { return key(a) > key(b); });
  const auto& ip = candidates.front().ip;
  return "http://" + std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." +
         std::to_string(ip[2]) + "." + std::to_string(ip[3]) + ":8123";
}

}  // namespace dinodia::telemetry
