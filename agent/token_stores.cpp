#include "agent/token_stores.hpp"

namespace dinodia::agent {

TokenStores::TokenStores(StateStore& store, LegacyTokenStateFile* legacy_file,
                         ha_bridge::TokenRegistry& registry)
    : store_(store), legacy_file_(legacy_file), registry_(registry) {}

TokenState TokenStores::accept(const std::vector<std::string>& hashes,
                               std::optional<std::int64_t> latest_version,
                               std::optional<std::int64_t> published_version) {
  TokenState state = store_.apply_token_state(hashes, latest_version, published_version);
  follow_database(state, true, true);
  return state;
}

TokenState TokenStores::accept_pairing(const Pairing& pairing,
                                       const std::vector<std::string>& hashes,
                                       std::optional<std::int64_t> latest_version,
                                       std::optional<std::int64_t> published_version) {
  TokenState state = store_.apply_pair(pairing, hashes, latest_version, published_version);
  // Without hashes in the answer the registry keeps serving what it serves.
  follow_database(state, true, !hashes.empty());
  return state;
}

void TokenStores::forget_sync_secret() {
  store_.clear_sync_secret();
  // The hash set did not change: the registry keeps serving it.
  if (legacy_file_) legacy_file_->export_current();
}

StoredTokens TokenStores::serve_stored(bool legacy_file_imported) {
  StoredTokens stored{store_.token_state(), store_.pairing().has_value()};
  const bool serve = !stored.state.hashes.empty();
  follow_database(stored.state, legacy_file_imported || stored.has_sync_secret || serve, serve);
  return stored;
}

void TokenStores::follow_database(const TokenState& state, bool export_legacy, bool serve) {
  if (export_legacy && legacy_file_) legacy_file_->export_current();
  if (serve) registry_.set_synced(state.hashes);
}

}  // namespace dinodia::agent
