#pragma once
// Seam between the platform sync and the telemetry it carries: one contributor per upload (the
// LAN base URL, the HA area snapshot, heating usage, electric usage). The sync cycle asks every
// contributor to add its keys to the token-state body, and reports back what the platform
// answered, so that a contributor acknowledges exactly what was sent and nothing else.
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
  // Does nothing unless overridden (a contributor with nothing to read from the answer).
  virtual void on_response(const nlohmann::json& sent_body, const nlohmann::json& response) {
    (void)sent_body;
    (void)response;
  }
  // The response was applied and persisted (non-empty hashes): acknowledge what `sent_body`
  // carried (clear dirty flags for exactly the uploaded rows).
  // Does nothing unless overridden (a contributor with nothing to acknowledge).
  virtual void on_committed(const nlohmann::json& sent_body) { (void)sent_body; }
};

}  // namespace dinodia::agent
