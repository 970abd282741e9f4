#include "ha_bridge/hub_access.hpp"

#include "common/text.hpp"

namespace dinodia::ha_bridge {

bool hub_token_accepted(const TokenRegistry* tokens, std::string_view presented,
                        ProvenToken* remembered) {
  const std::string_view token = text::trim(presented);
  if (token.empty() || tokens == nullptr) return false;
  if (remembered != nullptr) return remembered->accepts(*tokens, token);
  return tokens->accepts(token);
}

}  // namespace dinodia::ha_bridge
