#include "agent/lan_address_contributor.hpp"

#include <nlohmann/json.hpp>

namespace dinodia::agent {

void LanAddressContributor::contribute(nlohmann::json& request_body) {
  // Only the Supervisor knows the host's interfaces. Asked before the service started too: the
  // first token-state after pairing must already carry it (docs/compatibility.md#first-cycle).
  if (!fetches_.may_fetch() || !fetches_.has_supervisor_token()) return;
  if (auto lan = fetches_.lan_base_url()) request_body["lanBaseUrl"] = *lan;
}

}  // namespace dinodia::agent
