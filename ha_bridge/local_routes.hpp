#pragma once
// Endpoints the agent answers itself on port 8099 instead of relaying them
// (docs/compatibility.md#endpoints). Two kinds:
//   * the agent's own, /_dinodia/sync-status, /_dinodia/zha/*, /_dinodia/health, ...: matched on
//     method and the exact pathname (dot segments resolved, repeated slashes NOT collapsed),
//     before the relay, each with its own credential check (`admit`);
//   * REST shims (`ha_rest_shim`), Home Assistant REST paths that Home Assistant does not have
//     and the apps call anyway: matched on method and the path the relay would forward
//     (client_path), after the relay's own access decision, hub token then allow-list
//     (docs/lan-bridge.md#rest-shims). Every other method on such a path is relayed.
//
// Handlers may answer later and from any thread (the Zigbee ones wait on Home Assistant); the
// bridge hands the answer back to the connection's strand. No Asio types here on purpose.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dinodia::ha_bridge {

struct LocalRequest {
  std::string method;    // "GET", "POST", ...
  std::string pathname;  // exact pathname, e.g. "/_dinodia/sync-status"
  std::string query;     // without '?', raw (still percent-encoded)
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  std::string body;
  bool body_too_large = false;  // body exceeded the route's limit; `body` is empty then

  // First header with that (lowercase) name, or empty.
  std::string_view header(std::string_view lowercase_name) const {
    for (const auto& [k, v] : headers) {
      if (k == lowercase_name) return v;
    }
    return {};
  }
};

struct LocalResponse {
  int status = 200;
  std::string body;  // for JSON replies: compact JSON text
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close_connection = false;  // e.g. after an oversized body that was not drained
};

using Responder = std::function<void(LocalResponse)>;
using LocalHandler = std::function<void(LocalRequest, Responder)>;
// Decides from the head alone (method, path, query, headers; `body` still empty) whether the
// request may go on: nothing to go on, or the refusal to send. Runs on the bridge's loop before
// any body byte is read, so it must be quick and must not block.
using LocalAdmission = std::function<std::optional<LocalResponse>(const LocalRequest&)>;

struct LocalRoute {
  std::string method;
  std::string pathname;
  LocalHandler handler;
  std::size_t max_body_bytes = std::size_t{1024} * 1024;
  // Checked before the body is read (a credential); none: every request is admitted. Not used
  // for a REST shim, which the relay's access decision admits.
  LocalAdmission admit;
  // A Home Assistant REST path Home Assistant does not serve, answered here in its place
  // (docs/lan-bridge.md#rest-shims); `pathname` is then the normalised path as the relay
  // forwards it, e.g. "/api/config/label_registry/list".
  bool ha_rest_shim = false;
};

}  // namespace dinodia::ha_bridge
