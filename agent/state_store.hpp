#pragma once
// The agent's durable state: ONE SQLite database `<DINODIA_DATA_DIR>/dinodia-agent.db` (WAL,
// synchronous=FULL, mode 0600 for the file and its -wal/-shm). It holds the pairing (sync
// secret), the accepted hub-token hashes with their versions, a bounded history of sync attempts
// and per-origin counters (docs/platform-protocol.md#rotation).
//
// Invariant the whole sync relies on: a response's hash set and the agentSeenVersion derived
// from it are committed in ONE transaction, and agent_seen_version never decreases. So after a
// crash at any instant the agent never reports a version whose hashes it has not stored.
//
// Every method is thread-safe (one connection behind a mutex). Failures (disk full, read-only
// file, corrupt database) throw StateStoreError; a failed write rolls back and leaves the
// previous state intact. No SQL exists outside state_store.cpp.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace dinodia::agent {

class StatementCache;  // state_store.cpp

class StateStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Pairing {
  std::string serial;       // hub_agent_id the secret was issued for
  std::string sync_secret;  // never logged
  std::string paired_at;    // ISO-8601
  std::string origin;       // origin that answered the pairing
};

struct TokenState {
  std::vector<std::string> hashes;  // in the platform's order
  std::int64_t agent_seen_version = 0;
  std::optional<std::int64_t> latest_version;
  std::optional<std::int64_t> published_version;
  std::string updated_at;    // ISO-8601 of the last applied change
  std::string last_sync_at;  // ISO-8601 of the last applied token-state response
};

struct SyncAttempt {
  std::int64_t at_ms = 0;  // unix milliseconds
  std::string origin;      // e.g. https://api-origin.dinodiasmartliving.com
  std::string operation;   // "pair" | "token-state"
  std::string backend;     // x-dinodia-api-backend, or ""
  std::string status;      // "ok" or a failure class ("timeout", "server_error", ...)
  int http_status = 0;     // 0 = no response
  std::int64_t latency_ms = 0;
  std::string error;  // human-readable, never a secret
};

struct OriginCounters {
  std::string origin;
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  std::string last_error;
  std::string last_backend;
  std::int64_t last_success_ms = 0;  // 0 = never
  std::int64_t last_failure_ms = 0;
  // The origin's newest attempt and newest failed attempt still in the bounded history (class,
  // HTTP status, latency, backend header): what operations look at to see where the sync went
  // and why an origin failed (docs/platform-protocol.md#origins). nullopt once scrolled out.
  std::optional<SyncAttempt> last_attempt;
  std::optional<SyncAttempt> last_failed_attempt;
};

class StateStore {
 public:
  static constexpr int kSchemaVersion = 1;
  static constexpr std::size_t kHistoryLimit = 200;

  static std::string default_path(const std::string& data_dir);
  // A private database in memory, gone with the store: for bench/fleet_sim, which keeps one store
  // per simulated hub (and, for speed, its prepared statements). The agent never opens one.
  static constexpr const char* kInMemory = ":memory:";

  // Opens (creating if needed, mode 0600) and migrates. With read_only, never creates or
  // writes (the `status` command); throws if the file does not exist.
  explicit StateStore(const std::string& path, bool read_only = false);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const;

  std::optional<Pairing> pairing() const;
  TokenState token_state() const;

  // Applies a successful pair response in one transaction: stores the pairing and, if `hashes`
  // is non-empty, replaces the hash set and raises agent_seen_version to latest_version.
  // An empty hash list keeps the stored set and versions (a version is never acknowledged
  // without its hashes). Returns the resulting token state.
  TokenState apply_pair(const Pairing& pairing, const std::vector<std::string>& hashes,
                        std::optional<std::int64_t> latest_version,
                        std::optional<std::int64_t> published_version);
  // Applies a token-state response (hashes must be non-empty: the caller ignores empty lists)
  // in one transaction: hash set, latest/published versions, and
  // agent_seen_version = max(old, latest_version). Returns the resulting token state.
  TokenState apply_token_state(const std::vector<std::string>& hashes,
                               std::optional<std::int64_t> latest_version,
                               std::optional<std::int64_t> published_version);
  // Imports state from elsewhere (the legacy JSON file) in one transaction. Empty hashes keep
  // the stored set; an empty secret keeps the stored pairing; the version only goes up.
  TokenState import_state(const std::vector<std::string>& hashes, std::int64_t agent_seen_version,
                          const std::string& sync_secret, const std::string& serial);
  // Forgets the sync secret (the platform said "Hub not paired yet."). Hashes stay.
  void clear_sync_secret();

  // Appends to the bounded history and updates the origin's counters, in one transaction.
  void record_attempt(const SyncAttempt& attempt);
  std::vector<SyncAttempt> recent_attempts(std::size_t limit) const;  // newest first
  // Per origin, ordered by origin; with each origin's newest (failed) attempt from the history.
  std::vector<OriginCounters> origin_counters() const;

  // Small key/value settings (e.g. the digest of the last legacy file written).
  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

 private:
  void exec(const char* sql) const;
  void migrate();
  void close();
  TokenState read_token_state() const;  // caller holds mutex_
  // The newest history row per origin, of failures only if `failures_only`; caller holds mutex_.
  std::vector<SyncAttempt> newest_attempt_per_origin(bool failures_only) const;
  void write_hashes(const std::vector<std::string>& hashes);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<StatementCache> statements_;  // in-memory stores only
  mutable std::mutex mutex_;
};

}  // namespace dinodia::agent
