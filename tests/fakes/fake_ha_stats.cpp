// What reaches the Home Assistant stand-in, counted for the kiosk-relief benchmark
// (bench/relief.sh, bench/README.md#kiosk-relief): REST requests by path, WebSocket
// connections, logins (auth_ok), commands by type and template renders. Shown in
// GET /_fake/stats under "counts"; POST /_fake/stats/reset zeroes them (and only them: the
// older /_fake/stats fields keep their meaning for the tests that read them).
#include <map>
#include <mutex>
#include <string>

#include "tests/fakes/fake_ha.hpp"

namespace dinodia::fakes {
namespace {

struct Counts {
  std::mutex mutex;
  std::map<std::string, long> http_by_path;  // path without the query, as received
  std::map<std::string, long> ws_commands_by_type;
  long http_requests = 0;
  long ws_connections = 0;
  long ws_logins = 0;
  long ws_auth_invalid = 0;
  long ws_commands = 0;
  long template_renders = 0;
};
Counts g_counts;

}  // namespace

void count_http_request(std::string_view target) {
  const std::string path(target.substr(0, target.find('?')));
  std::lock_guard lock(g_counts.mutex);
  ++g_counts.http_requests;
  ++g_counts.http_by_path[path];
}

void count_ws_connection() {
  std::lock_guard lock(g_counts.mutex);
  ++g_counts.ws_connections;
}

void count_ws_auth(bool ok) {
  std::lock_guard lock(g_counts.mutex);
  ++(ok ? g_counts.ws_logins : g_counts.ws_auth_invalid);
}

void count_ws_command(std::string_view type) {
  std::lock_guard lock(g_counts.mutex);
  ++g_counts.ws_commands;
  ++g_counts.ws_commands_by_type[std::string(type)];
}

void count_template_render() {
  std::lock_guard lock(g_counts.mutex);
  ++g_counts.template_renders;
}

nlohmann::json counts_json() {
  std::lock_guard lock(g_counts.mutex);
  return {{"http_requests", g_counts.http_requests},
          {"http_by_path", g_counts.http_by_path},
          {"ws_connections", g_counts.ws_connections},
          {"ws_logins", g_counts.ws_logins},
          {"ws_auth_invalid", g_counts.ws_auth_invalid},
          {"ws_commands", g_counts.ws_commands},
          {"ws_commands_by_type", g_counts.ws_commands_by_type},
          {"template_renders", g_counts.template_renders}};
}

void reset_counts() {
  std::lock_guard lock(g_counts.mutex);
  g_counts.http_by_path.clear();
  g_counts.ws_commands_by_type.clear();
  g_counts.http_requests = g_counts.ws_connections = g_counts.ws_logins = 0;
  g_counts.ws_auth_invalid = g_counts.ws_commands = g_counts.template_renders = 0;
}

}  // namespace dinodia::fakes
