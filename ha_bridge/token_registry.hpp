#pragma once
// The set of hub tokens the bridge accepts (docs/compatibility.md#hub-tokens,
// docs/platform-protocol.md#rotation).
//
// Accepted = SHA-256 hashes synced from the platform ∪ `hub_token_hashes` ∪ the hashes of the
// plaintext `hub_tokens` from options. Plaintext tokens are hashed once at load, so a presented
// token is only ever compared as a hash lookup, never as plaintext.
//
// The hot path (every LAN request) must not take a lock: readers use a per-thread cached
// snapshot that is refreshed only when the generation counter moves, which happens when the
// platform sync swaps the set (a few times an hour). Writers publish a whole new snapshot.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace dinodia::ha_bridge {

class TokenRegistry {
 public:
  TokenRegistry();
  TokenRegistry(const TokenRegistry&) = delete;
  TokenRegistry& operator=(const TokenRegistry&) = delete;

  // Local fallback credentials from options. Entries are trimmed; hashes lowercased; invalid
  // hash strings (not 64 hex chars) are ignored and counted in the return value.
  std::size_t set_local(const std::vector<std::string>& plaintext_tokens,
                        const std::vector<std::string>& hashes);
  // Replaces the platform-synced hashes (trimmed, lowercased, empties dropped). The caller
  // decides whether an empty list should be applied (the sync never applies one).
  void set_synced(const std::vector<std::string>& hashes);

  // True if the presented token (trimmed) hashes into the accepted set. Lock-free except on the
  // first call on a thread after a swap.
  bool accepts(std::string_view presented_token) const;

  std::size_t synced_count() const;
  std::vector<std::string> synced_hashes() const;

  // Which accepted set is current: this registry, and a generation that moves whenever the set
  // is replaced. A remembered decision (a thread's cached snapshot, a ProvenToken) holds only
  // while the version is the one it was made under. Registry ids start at 1, so a default
  // Version matches none.
  struct Version {
    std::uint64_t registry_id = 0;
    std::uint64_t generation = 0;
    bool operator==(const Version&) const = default;
  };
  Version version() const { return {id_, generation_.load(std::memory_order_acquire)}; }

 private:
  // Hashes are kept as their 32 bytes: a presented token is hashed and looked up without
  // spelling the digest out in hex (an allocation and 64 bytes to hash, per request).
  using Digest = std::array<unsigned char, 32>;
  struct DigestHash {
    std::size_t operator()(const Digest& d) const {
      std::size_t h;
      std::memcpy(&h, d.data(), sizeof h);  // a SHA-256 is uniformly spread already
      return h;
    }
  };
  using DigestSet = std::unordered_set<Digest, DigestHash>;
  struct Snapshot {
    DigestSet synced;
    DigestSet local;
  };
  // The calling thread's cached snapshot (refreshed when the generation moved); valid until the
  // thread's next call.
  const Snapshot& current() const;
  void publish(std::shared_ptr<const Snapshot> next);

  mutable std::mutex write_mutex_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by write_mutex_
  std::atomic<std::uint64_t> generation_{1};
  std::uint64_t id_;  // distinguishes registries in remembered decisions (see Version)
};

// One connection's memory of the token it last proved. A kiosk presents the same token on its
// keep-alive connection once a second, and hashing it each time was about a tenth of the
// relay's instructions per request. The memory holds only while the registry's accepted set is
// the one the token was proved against: any replacement (a rotation, a revocation, a sync)
// forces a full check, so a revoked token is refused on its very next request. The comparison
// with the remembered token is constant-time; the token is wiped when forgotten.
class ProvenToken {
 public:
  ProvenToken() = default;
  ProvenToken(const ProvenToken&) = delete;
  ProvenToken& operator=(const ProvenToken&) = delete;
  ~ProvenToken() { forget(); }

  // Same answer as registry.accepts(presented).
  bool accepts(const TokenRegistry& registry, std::string_view presented);
  void forget();

 private:
  std::string token_;
  TokenRegistry::Version version_;  // the accepted set token_ was proved against
};

}  // namespace dinodia::ha_bridge
