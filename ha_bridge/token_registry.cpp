#include "ha_bridge/token_registry.hpp"

#include "common/crypto.hpp"
#include "common/text.hpp"

namespace dinodia::ha_bridge {
namespace {
std::atomic<std::uint64_t> g_next_registry_id{1};

struct ThreadCache {
  TokenRegistry::Version version;
  std::shared_ptr<const void> snapshot;
};
thread_local ThreadCache t_cache;

template <class Set>
Set normalised(const std::vector<std::string>& hashes, std::size_t* rejected) {
  Set out;
  for (const auto& h : hashes) {
    auto t = text::trim(h);
    if (t.empty()) continue;
    crypto::Sha256Digest digest;
    if (!crypto::sha256_from_hex(t, digest)) {
      if (rejected) ++*rejected;
      continue;
    }
    out.insert(digest);
  }
  return out;
}
}  // namespace

TokenRegistry::TokenRegistry()
    : snapshot_(std::make_shared<const Snapshot>()), id_(g_next_registry_id.fetch_add(1)) {}

void TokenRegistry::publish(std::shared_ptr<const Snapshot> next) {
  // Called with write_mutex_ held. The generation moves after the pointer, so a reader that
  // sees the new generation also finds the new snapshot when it takes the mutex.
  snapshot_ = std::move(next);
  generation_.fetch_add(1, std::memory_order_release);
}

std::size_t TokenRegistry::set_local(const std::vector<std::string>& plaintext_tokens,
                                     const std::vector<std::string>& hashes) {
  std::size_t rejected = 0;
  auto local = normalised<DigestSet>(hashes, &rejected);
  for (const auto& token : plaintext_tokens) {
    auto t = text::trim(token);
    if (!t.empty()) local.insert(crypto::sha256(t));
  }
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<Snapshot>();
  next->synced = snapshot_->synced;
  next->local = std::move(local);
  publish(std::move(next));
  return rejected;
}

void TokenRegistry::set_synced(const std::vector<std::string>& hashes) {
  auto synced = normalised<DigestSet>(hashes, nullptr);
  std::lock_guard<std::mutex> lock(write_mutex_);
  auto next = std::make_shared<Snapshot>();
  next->synced = std::move(synced);
  next->local = snapshot_->local;
  publish(std::move(next));
}

const TokenRegistry::Snapshot& TokenRegistry::current() const {
  if (t_cache.version != version()) {
    std::lock_guard<std::mutex> lock(write_mutex_);
    t_cache.version = version();
    t_cache.snapshot = snapshot_;
  }
  // No copy of the shared_ptr (two atomic operations per request): the cache holds it.
  return *static_cast<const Snapshot*>(t_cache.snapshot.get());
}

bool TokenRegistry::accepts(std::string_view presented_token) const {
  auto token = text::trim(presented_token);
  if (token.empty()) return false;
  const auto digest = crypto::sha256(token);
  const auto& snap = current();
  return snap.synced.count(digest) != 0 || snap.local.count(digest) != 0;
}

std::size_t TokenRegistry::synced_count() const {
  return current().synced.size();
}

std::vector<std::string> TokenRegistry::synced_hashes() const {
  const auto& snap = current();
  std::vector<std::string> out;
  out.reserve(snap.synced.size());
  for (const auto& digest : snap.synced) {
    out.push_back(crypto::to_hex(
        std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())));
  }
  return out;
}

bool ProvenToken::accepts(const TokenRegistry& registry, std::string_view presented) {
  // Read before the check: a swap that lands during it leaves an older generation remembered,
  // which only costs a full check next time.
  const TokenRegistry::Version version = registry.version();
  // Nothing remembered (an empty token_) never compares equal.
  if (version_ == version && crypto::constant_time_equal(token_, presented)) return true;
  forget();
  if (!registry.accepts(presented)) return false;
  token_.assign(presented);
  version_ = version;
  return true;
}

void ProvenToken::forget() {
  crypto::wipe(token_);
  version_ = {};
}

}  // namespace dinodia::ha_bridge
