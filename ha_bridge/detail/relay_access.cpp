#include "ha_bridge/detail/relay_access.hpp"

#include "common/text.hpp"
#include "ha_bridge/hub_access.hpp"

namespace dinodia::ha_bridge::detail {

RelayAccess relay_access(ClientConnection& client, BridgeContext& ctx, const RequestHead& head,
                         const NormalisedTarget& target) {
  // Auth first (a deliberate difference from legacy, which checked the path first): a caller
  // without a hub token learns nothing about the allowed paths.
  if (!hub_token_accepted(ctx.tokens.get(),
                          text::bearer_token(head.get(http::field::authorization)),
                          &client.proven_token)) {
    ctx.stats.http_rejected_unauthorized.fetch_add(1, std::memory_order_relaxed);
    return RelayAccess::no_hub_token;
  }
  note_authenticated(client, ctx);
  // The hassio service domain (add-ons, host reboot) is refused like a path off the list
  // unless the option allows it: no app calls it (docs/http-input.md).
  if (!ctx.allow_list.allows_remembered(target.client_path) ||
      (!ctx.config.allow_hassio_domain && names_hassio_service(target.client_path))) {
    ctx.stats.http_rejected_forbidden.fetch_add(1, std::memory_order_relaxed);
    return RelayAccess::path_not_allowed;
  }
  return RelayAccess::granted;
}

}  // namespace dinodia::ha_bridge::detail
