// agent/TokenStores: the database, the 0.4.17 token state file and the bridge's registry move
// together (docs/architecture.md, docs/compatibility.md#token-state-file).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "agent/legacy_token_state.hpp"
#include "agent/state_store.hpp"
#include "agent/token_stores.hpp"
#include "ha_bridge/token_registry.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using dinodia::testing::read_file;
using dinodia::testing::TempDir;

namespace {
const std::string kH1(64, 'a');
const std::string kH2(64, 'b');
}  // namespace

TEST_CASE("forget_sync_secret: database and legacy file lose the secret - hashes stay served",
          "[legacy]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  const std::string path = dir.file("dinodia_token_state.json");
  LegacyTokenStateFile file(path, store);
  dinodia::ha_bridge::TokenRegistry registry;
  TokenStores stores(store, &file, registry);

  stores.accept_pairing({"HUB-1", "secret-before", "t", "https://primary.example"}, {kH1, kH2}, 2,
                        1);
  auto before = parse_legacy_token_state(read_file(path));
  REQUIRE(before.has_value());
  REQUIRE(before->sync_secret == "secret-before");

  stores.forget_sync_secret();
  CHECK_FALSE(store.pairing().has_value());
  // The legacy file followed: a rollback to 0.4.17 pairs again instead of signing with a secret
  // the platform no longer holds; everything else in it is unchanged.
  auto after = parse_legacy_token_state(read_file(path));
  REQUIRE(after.has_value());
  CHECK(after->sync_secret.empty());
  CHECK(read_file(path).find("secret-before") == std::string::npos);
  CHECK(after->hashes == std::vector<std::string>{kH1, kH2});
  CHECK(after->agent_seen_version == 2);
  CHECK(store.token_state().hashes == std::vector<std::string>{kH1, kH2});
  CHECK(registry.synced_count() == 2);
  // The agent's own write is not taken for the legacy agent's at the next start.
  CHECK_FALSE(file.import_if_new("HUB-1"));
  CHECK_FALSE(store.pairing().has_value());

  // Paired again: the new secret reaches the file too.
  stores.accept_pairing({"HUB-1", "secret-after", "t", "https://primary.example"}, {}, 2, 1);
  CHECK(parse_legacy_token_state(read_file(path))->sync_secret == "secret-after");
}

TEST_CASE("forget_sync_secret without a legacy file only touches the database", "[legacy]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  dinodia::ha_bridge::TokenRegistry registry;
  TokenStores stores(store, nullptr, registry);
  stores.accept_pairing({"HUB-1", "s", "t", "o"}, {kH1}, 1, 0);
  stores.forget_sync_secret();
  CHECK_FALSE(store.pairing().has_value());
  CHECK(store.token_state().hashes == std::vector<std::string>{kH1});
  CHECK(registry.synced_count() == 1);
}
