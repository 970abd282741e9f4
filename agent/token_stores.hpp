#pragma once
// The three places that hold the hub-token hashes the platform accepted, kept in step here and
// nowhere else: the SQLite state store (the source of truth), the legacy agent's token state file
// (so a rollback to the legacy agent loses nothing) and the bridge's in-memory TokenRegistry
// (what requests are checked against).
//
// Order, every time: the database transaction first (if it fails nothing else changes and the
// caller reports the error), then the legacy file (a failure there is logged: the database
// remains the truth), and only then the registry, so that a set is served only once it is durable.
// See docs/architecture.md for the token path as a whole.
#include <optional>
#include <string>
#include <vector>

#include "agent/legacy_token_state.hpp"
#include "agent/state_store.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::agent {

struct StoredTokens {
  TokenState state;
  bool has_sync_secret = false;
};

class TokenStores {
 public:
  // `legacy_file` may be null (no legacy file is kept).
  TokenStores(StateStore& store, LegacyTokenStateFile* legacy_file,
              ha_bridge::TokenRegistry& registry);

  // A token-state answer (non-empty `hashes`). Throws StateStoreError when the database cannot
  // take it; then nothing changed anywhere.
  TokenState accept(const std::vector<std::string>& hashes,
                    std::optional<std::int64_t> latest_version,
                    std::optional<std::int64_t> published_version);
  // A pairing answer: the pairing and any hashes in one transaction. Empty `hashes` keep the
  // stored set, which the registry then keeps serving. Throws StateStoreError as accept().
  TokenState accept_pairing(const Pairing& pairing, const std::vector<std::string>& hashes,
                            std::optional<std::int64_t> latest_version,
                            std::optional<std::int64_t> published_version);
  // The platform said `Hub not paired yet.` (docs/platform-protocol.md#errors): forgets the sync
  // secret in the database, then rewrites the legacy file without it, so that a rollback to the
  // legacy agent pairs again instead of signing with a secret the platform no longer holds. The
  // hashes stay in force everywhere. Throws StateStoreError as accept().
  void forget_sync_secret();
  // At start-up, before the port opens: serves the stored set (if any) and rewrites the legacy
  // file when there is anything a rollback would need (a stored set or sync secret, or a legacy
  // file just imported). Throws StateStoreError.
  StoredTokens serve_stored(bool legacy_file_imported);

 private:
  // The steps after the database, in this order: the legacy file, then the registry.
  void follow_database(const TokenState& state, bool export_legacy, bool serve);

  StateStore& store_;
  LegacyTokenStateFile* legacy_file_;
  ha_bridge::TokenRegistry& registry_;
};

}  // namespace dinodia::agent
