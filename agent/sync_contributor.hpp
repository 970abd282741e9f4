#pragma once
// Seam between the platform sync (issue #3) and the telemetry it carries (issue #4: LAN base
// URL, heating/electric usage, HA areas). The sync cycle asks every contributor to add its keys
// to the token-state body, and reports back what the platform answered, so that a contributor
// acknowledges exactly what was sent and nothing else (legacy §17 items 14, 15, 22).
//
// Calls happen on the sync thread, one cycle at a time.
#include <nlohmann/json_fwd.hpp>

namespace dinodia::agent {

class SyncContributor {
 public:
  virtual ~SyncContributor() = default;
  // Adds optional keys (e.g. "lanBaseUrl", "heatingUsage") to the request body. Must not block
  // for long: the request is signed after this returns, so anything slow goes before.
  virtual void contribute(nlohmann::json& request_body) = 0;
  // A 2xx token-state response arrived and parsed; called with the body that was sent, before
  // the hash set is applied. Response keys such as heatingUsageConfig / heatingUsageResetAt are
  // handled here. Called even when the response carries zero hashes.
  virtual void on_response(const nlohmann::json& sent_body, const nlohmann::json& response) = 0;
  // The response was applied and persisted (non-empty hashes): acknowledge what `sent_body`
  // carried (clear dirty flags for exactly the uploaded rows).
  virtual void on_committed(const nlohmann::json& sent_body) = 0;
};

}  // namespace dinodia::agent
