#pragma once
// Where Home Assistant Core is reached: the Supervisor's Core proxy. In a home this is
// http://supervisor (env DINODIA_SUPERVISOR_URL overrides it for tests and local runs).
// REST goes to <base>/core/api/..., the WebSocket to <base>/core/api/websocket.
#include <cstdint>
#include <string>
#include <string_view>

namespace dinodia::ha_bridge {

struct UpstreamTarget {
  std::string host = "supervisor";
  std::uint16_t port = 80;
  std::string path_prefix;  // path part of the base URL without trailing '/', usually empty

  // "/core" + path (path starts with '/').
  std::string core_path(std::string_view path) const {
    return path_prefix + "/core" + std::string(path);
  }
  std::string host_header() const { return port == 80 ? host : host + ":" + std::to_string(port); }
};

// Accepts http://host[:port][/prefix]. Throws std::invalid_argument with a clear message for
// anything else (https, userinfo, missing host, bad port).
UpstreamTarget parse_upstream_url(std::string_view url);

}  // namespace dinodia::ha_bridge
