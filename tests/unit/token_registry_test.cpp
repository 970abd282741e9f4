// ha_bridge/TokenRegistry: the 0.4.17 acceptance rules (docs/compatibility.md#hub-tokens) and the
// lock-free snapshot swap.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "common/crypto.hpp"
#include "ha_bridge/token_registry.hpp"

using dinodia::ha_bridge::TokenRegistry;

namespace {
const std::string kHash = "fde1bc094b00277cfc92be793d20c5792fc46ed8ababf86b9927b7aa26344e61";
}

TEST_CASE("synced hashes accept the token, trimmed, case-insensitive hash", "[tokens]") {
  TokenRegistry r;
  CHECK_FALSE(r.accepts("example-hub-token"));
  r.set_synced({"  " +
                std::string("FDE1BC094B00277CFC92BE793D20C5792FC46ED8ABABF86B9927B7AA26344E61") +
                " "});
  CHECK(r.accepts("example-hub-token"));
  CHECK(r.accepts("  example-hub-token\t"));
  CHECK_FALSE(r.accepts("Example-hub-token"));
  CHECK_FALSE(r.accepts(""));
  CHECK_FALSE(r.accepts("   "));
  CHECK(r.synced_count() == 1);
}

TEST_CASE("local plaintext tokens and local hashes stay accepted next to synced ones", "[tokens]") {
  TokenRegistry r;
  r.set_local({" local-plain "}, {kHash, "not-a-hash", ""});
  CHECK(r.accepts("local-plain"));
  CHECK(r.accepts("example-hub-token"));
  r.set_synced({dinodia::crypto::sha256_hex("platform-token")});
  CHECK(r.accepts("platform-token"));
  CHECK(r.accepts("local-plain"));
  r.set_synced({});
  CHECK_FALSE(r.accepts("platform-token"));
  CHECK(r.accepts("local-plain"));
}

TEST_CASE("set_local reports hash entries that are not SHA-256 hex", "[tokens]") {
  TokenRegistry r;
  CHECK(r.set_local({}, {kHash, "xyz", "  "}) == 1);
}

TEST_CASE("reader threads with cached snapshots see every swap", "[tokens]") {
  // Each reader thread caches a snapshot; a swap must invalidate every thread's cache, or a
  // kiosk would keep getting 401 (or a revoked token keep working) on that thread.
  TokenRegistry r;
  const std::string a = dinodia::crypto::sha256_hex("token-a");
  const std::string b = dinodia::crypto::sha256_hex("token-b");
  r.set_synced({a});
  std::atomic<bool> writer_done{false};
  std::atomic<int> saw_final_state{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!writer_done.load()) {
        (void)r.accepts("token-a");
        (void)r.accepts("token-b");
      }
      if (r.accepts("token-b") && !r.accepts("token-a")) ++saw_final_state;
    });
  }
  for (int i = 0; i < 2000; ++i) {
    r.set_synced({a, b});
    r.set_synced({a});
  }
  r.set_synced({b});
  writer_done = true;
  for (auto& t : readers) t.join();
  CHECK(saw_final_state.load() == 4);
}

TEST_CASE("a connection's proven token answers as the registry does, across every swap",
          "[tokens]") {
  using dinodia::ha_bridge::ProvenToken;
  TokenRegistry r;
  ProvenToken proven;
  const std::string a = dinodia::crypto::sha256_hex("token-a");
  const std::string b = dinodia::crypto::sha256_hex("token-b");
  CHECK_FALSE(proven.accepts(r, "token-a"));
  r.set_synced({a});
  CHECK(proven.accepts(r, "token-a"));
  CHECK(proven.accepts(r, "token-a"));  // remembered
  // A different token on the same connection is checked in full, not taken for the proven one.
  CHECK_FALSE(proven.accepts(r, "token-A"));
  CHECK(proven.accepts(r, " token-a "));  // not the remembered bytes: checked, trimmed, accepted
  CHECK_FALSE(proven.accepts(r, ""));
  CHECK(proven.accepts(r, "token-a"));
  // Revoked by a sync: refused on the very next request on the same connection.
  r.set_synced({b});
  CHECK_FALSE(proven.accepts(r, "token-a"));
  CHECK(proven.accepts(r, "token-b"));
  // A swap that keeps the token accepted keeps accepting it.
  r.set_synced({a, b});
  CHECK(proven.accepts(r, "token-b"));
  CHECK(proven.accepts(r, "token-a"));
  // Local options replaced: the same rule.
  r.set_local({"local-plain"}, {});
  CHECK(proven.accepts(r, "local-plain"));
  r.set_local({}, {});
  CHECK_FALSE(proven.accepts(r, "local-plain"));
  // Another registry never inherits what was proven against this one.
  TokenRegistry other;
  CHECK(proven.accepts(r, "token-a"));
  CHECK_FALSE(proven.accepts(other, "token-a"));
}
