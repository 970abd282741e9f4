#include "agent/state_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"

namespace dinodia::agent {
namespace {

// Migrations in order; index i brings the schema from version i to i+1. Never edit a shipped
// entry: append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE pairing (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  serial TEXT NOT NULL DEFAULT '',
  sync_secret TEXT NOT NULL DEFAULT '',
  paired_at TEXT NOT NULL DEFAULT '',
  origin TEXT NOT NULL DEFAULT ''
);
CREATE TABLE token_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  agent_seen_version INTEGER NOT NULL DEFAULT 0,
  latest_version INTEGER,
  published_version INTEGER,
  updated_at TEXT NOT NULL DEFAULT '',
  last_sync_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO token_state (id) VALUES (1);
CREATE TABLE token_hashes (
  position INTEGER PRIMARY KEY,
  hash TEXT NOT NULL
);
CREATE TABLE sync_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  origin TEXT NOT NULL,
  operation TEXT NOT NULL,
  backend TEXT NOT NULL,
  status TEXT NOT NULL,
  http_status INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  error TEXT NOT NULL
);
CREATE TABLE origin_counters (
  origin TEXT PRIMARY KEY,
  successes INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  last_backend TEXT NOT NULL DEFAULT '',
  last_success_ms INTEGER NOT NULL DEFAULT 0,
  last_failure_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == StateStore::kSchemaVersion);

}  // namespace

// The prepared statements of an in-memory store (StateStore::kInMemory), kept for its life:
// bench/fleet_sim runs thousands of them, and parsing each statement again dominated its time.
// A file-backed store prepares every statement where it runs, as it always has.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement for `sql` (a string literal: its address is the key), prepared once.
  sqlite3_stmt* get(const char* sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      throw StateStoreError(std::string("state database: ") + sqlite3_errmsg(db_));
    }
    statements_.emplace(sql, stmt);
    return stmt;
  }

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

namespace {

class Statement {
 public:
  // Prepared here and finalized at the end of its use, or, with a cache, taken from it and reset
  // (bindings cleared) at the end of its use, so that it holds no lock between uses.
  Statement(sqlite3* db, StatementCache* cache, const char* sql) : db_(db), cached_(cache) {
    if (cache) {
      stmt_ = cache->get(sql);
    } else if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw StateStoreError(std::string("state database: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() {
    if (cached_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, std::optional<std::int64_t> v) {
    if (v) {
      sqlite3_bind_int64(stmt_, i, *v);
    } else {
      sqlite3_bind_null(stmt_, i);
    }
    return *this;
  }
  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw StateStoreError(std::string("state database: ") + sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  std::string text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<std::int64_t> opt_integer(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, col);
  }

 private:
  sqlite3* db_;
  bool cached_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Rolls back unless committed, so an exception half-way leaves the previous state.
class Transaction {
 public:
  Transaction(sqlite3* db, StatementCache* cache) : db_(db), cache_(cache) {
    exec("BEGIN IMMEDIATE");
  }
  ~Transaction() {
    if (done_) return;
    if (cache_) {
      sqlite3_stmt* rollback = cache_->get("ROLLBACK");
      sqlite3_step(rollback);
      sqlite3_reset(rollback);
    } else {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  void commit() {
    exec("COMMIT");
    done_ = true;
  }

 private:
  void exec(const char* sql) {
    if (cache_) {
      sqlite3_stmt* stmt = cache_->get(sql);
      const int rc = sqlite3_step(stmt);
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE)
        throw StateStoreError(std::string("state database: ") + sqlite3_errmsg(db_));
      return;
    }
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw StateStoreError("state database: " + msg);
    }
  }
  sqlite3* db_;
  StatementCache* cache_;
  bool done_ = false;
};

// One sync_history row selected as at_ms, origin, operation, backend, status, http_status,
// latency_ms, error.
SyncAttempt attempt_from_row(const Statement& s) {
  SyncAttempt a;
  a.at_ms = s.integer(0);
  a.origin = s.text(1);
  a.operation = s.text(2);
  a.backend = s.text(3);
  a.status = s.text(4);
  a.http_status = static_cast<int>(s.integer(5));
  a.latency_ms = s.integer(6);
  a.error = s.text(7);
  return a;
}

// The sync secret is the one secret in this file: keep the file private even if it was created
// by hand or restored with a looser mode.
void restrict_mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    ::chmod(path.c_str(), 0600);
  }
}

// SQLite reports a full disk while opening a WAL database (it cannot size the -shm file) as a
// plain "disk I/O error"; name the real cause so the operator knows what to fix.
std::string space_hint(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) == 0 && st.f_bavail == 0) {
    return " (no space left on the file system holding " + dir + ")";
  }
  return {};
}

// In-memory stores start from an image of a freshly migrated database, made by the first one of
// the process: bench/fleet_sim opens thousands, and running the migrations for each cost more than
// all their syncs.
struct InMemoryTemplate {
  std::mutex mutex;
  std::vector<unsigned char> image;
};
InMemoryTemplate& in_memory_template() {
  static InMemoryTemplate t;
  return t;
}

}  // namespace

std::string StateStore::default_path(const std::string& data_dir) {
  return data_dir + "/dinodia-agent.db";
}

StateStore::StateStore(const std::string& path, bool read_only) : path_(path) {
  const bool in_memory = path == kInMemory;
  if (!read_only && !in_memory) {
    // Create the file ourselves so it is 0600 from its first byte; SQLite then gives the -wal
    // and -shm files the database file's mode.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      throw StateStoreError("cannot open state database " + path + ": " + std::strerror(errno) +
                            space_hint(path));
    }
    ::close(fd);
    restrict_mode(path);
  }
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  flags |= SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StateStoreError("cannot open state database " + path + ": " + msg + space_hint(path));
  }
  try {
    bool from_template = false;
    if (in_memory) {
      statements_ = std::make_unique<StatementCache>(db_);
      InMemoryTemplate& t = in_memory_template();
      std::lock_guard lock(t.mutex);
      if (!t.image.empty()) {
        auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(t.image.size()));
        if (copy == nullptr) throw StateStoreError("state database: out of memory");
        std::memcpy(copy, t.image.data(), t.image.size());
        const auto size = static_cast<sqlite3_int64>(t.image.size());
        if (sqlite3_deserialize(db_, "main", copy, size, size,
                                SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
            SQLITE_OK) {
          throw StateStoreError(std::string("state database: ") + sqlite3_errmsg(db_));
        }
        from_template = true;
      }
    }
    sqlite3_busy_timeout(db_, 5000);
    if (!read_only) {
      // An in-memory database keeps its own journal mode (WAL needs a file), and small pages:
      // its few rows fit, and thousands of them stay small.
      if (!in_memory) {
        exec("PRAGMA journal_mode=WAL");
      } else if (!from_template) {
        exec("PRAGMA page_size=1024");
      }
      // FULL: a commit is on disk before the sync reports the version it carries.
      exec("PRAGMA synchronous=FULL");
      migrate();
      if (!in_memory) {
        restrict_mode(path + "-wal");
        restrict_mode(path + "-shm");
      } else if (!from_template) {
        sqlite3_int64 size = 0;
        unsigned char* image = sqlite3_serialize(db_, "main", &size, 0);
        if (image != nullptr) {
          InMemoryTemplate& t = in_memory_template();
          std::lock_guard lock(t.mutex);
          if (t.image.empty()) t.image.assign(image, image + size);
          sqlite3_free(image);
        }
      }
    } else {
      exec("PRAGMA query_only=ON");
      if (schema_version() < 1) throw StateStoreError("state database " + path + " is empty");
    }
  } catch (const StateStoreError& e) {
    close();
    throw StateStoreError(e.what() + space_hint(path));
  } catch (...) {
    close();
    throw;
  }
}

StateStore::~StateStore() {
  close();
}

void StateStore::close() {
  statements_.reset();  // finalized before the connection closes
  if (db_) sqlite3_close(db_);
  db_ = nullptr;
}

void StateStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw StateStoreError("state database " + path_ + ": " + msg);
  }
}

int StateStore::schema_version() const {
  std::lock_guard lock(mutex_);
  Statement exists(db_, statements_.get(),
                   "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                   "name='schema_migrations'");
  if (!exists.step() || exists.integer(0) == 0) return 0;
  Statement s(db_, statements_.get(), "SELECT coalesce(max(version), 0) FROM schema_migrations");
  return s.step() ? static_cast<int>(s.integer(0)) : 0;
}

void StateStore::migrate() {
  exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "applied_at TEXT NOT NULL)");
  int current = schema_version();
  if (current > kSchemaVersion) {
    throw StateStoreError("state database " + path_ + " has schema version " +
                          std::to_string(current) + ", newer than this agent understands (" +
                          std::to_string(kSchemaVersion) + "); refusing to touch it");
  }
  std::lock_guard lock(mutex_);
  for (int v = current; v < kMigrationCount; ++v) {
    Transaction tx(db_, statements_.get());
    exec(kMigrations[v]);
    Statement(db_, statements_.get(),
              "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
        .bind(1, std::int64_t{v + 1})
        .bind(2, clock::iso8601())
        .run();
    tx.commit();
  }
}

std::optional<Pairing> StateStore::pairing() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, statements_.get(),
              "SELECT serial, sync_secret, paired_at, origin FROM pairing WHERE id = 1");
  if (!s.step()) return std::nullopt;
  Pairing p{s.text(0), s.text(1), s.text(2), s.text(3)};
  if (p.sync_secret.empty()) return std::nullopt;
  return p;
}

TokenState StateStore::read_token_state() const {
  TokenState t;
  Statement s(db_, statements_.get(),
              "SELECT agent_seen_version, latest_version, published_version, updated_at, "
              "last_sync_at FROM token_state WHERE id = 1");
  if (s.step()) {
    t.agent_seen_version = s.integer(0);
    t.latest_version = s.opt_integer(1);
    t.published_version = s.opt_integer(2);
    t.updated_at = s.text(3);
    t.last_sync_at = s.text(4);
  }
  Statement h(db_, statements_.get(), "SELECT hash FROM token_hashes ORDER BY position");
  while (h.step()) t.hashes.push_back(h.text(0));
  return t;
}

TokenState StateStore::token_state() const {
  std::lock_guard lock(mutex_);
  return read_token_state();
}

void StateStore::write_hashes(const std::vector<std::string>& hashes) {
  Statement(db_, statements_.get(), "DELETE FROM token_hashes").run();
  std::int64_t position = 0;
  for (const auto& h : hashes) {
    Statement(db_, statements_.get(), "INSERT INTO token_hashes (position, hash) VALUES (?, ?)")
        .bind(1, position++)
        .bind(2, h)
        .run();
  }
}

TokenState StateStore::apply_pair(const Pairing& pairing, const std::vector<std::string>& hashes,
                                  std::optional<std::int64_t> latest_version,
                                  std::optional<std::int64_t> published_version) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_, statements_.get());
  Statement(db_, statements_.get(),
            "INSERT INTO pairing (id, serial, sync_secret, paired_at, origin) VALUES (1, ?, ?, ?, "
            "?) ON CONFLICT(id) DO UPDATE SET serial = excluded.serial, sync_secret = "
            "excluded.sync_secret, paired_at = excluded.paired_at, origin = excluded.origin")
      .bind(1, pairing.serial)
      .bind(2, pairing.sync_secret)
      .bind(3, pairing.paired_at)
      .bind(4, pairing.origin)
      .run();
  if (!hashes.empty()) {
    write_hashes(hashes);
    Statement(db_, statements_.get(),
              "UPDATE token_state SET agent_seen_version = max(agent_seen_version, "
              "coalesce(?1, agent_seen_version)), latest_version = ?1, published_version = ?2, "
              "updated_at = ?3 WHERE id = 1")
        .bind(1, latest_version)
        .bind(2, published_version)
        .bind(3, clock::iso8601())
        .run();
  }
  TokenState result = read_token_state();
  tx.commit();
  return result;
}

TokenState StateStore::apply_token_state(const std::vector<std::string>& hashes,
                                         std::optional<std::int64_t> latest_version,
                                         std::optional<std::int64_t> published_version) {
  if (hashes.empty()) {
    throw StateStoreError("refusing to store an empty hash set");
  }
  std::lock_guard lock(mutex_);
  Transaction tx(db_, statements_.get());
  write_hashes(hashes);
  const std::string now = clock::iso8601();
  Statement(db_, statements_.get(),
            "UPDATE token_state SET agent_seen_version = max(agent_seen_version, "
            "coalesce(?1, agent_seen_version)), latest_version = ?1, published_version = ?2, "
            "updated_at = ?3, last_sync_at = ?3 WHERE id = 1")
      .bind(1, latest_version)
      .bind(2, published_version)
      .bind(3, now)
      .run();
  TokenState result = read_token_state();
  tx.commit();
  return result;
}

TokenState StateStore::import_state(const std::vector<std::string>& hashes,
                                    std::int64_t agent_seen_version, const std::string& sync_secret,
                                    const std::string& serial) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_, statements_.get());
  if (!sync_secret.empty()) {
    Statement(db_, statements_.get(),
              "INSERT INTO pairing (id, serial, sync_secret, paired_at, origin) VALUES (1, ?, ?, "
              "?, 'legacy-import') ON CONFLICT(id) DO UPDATE SET serial = excluded.serial, "
              "sync_secret = excluded.sync_secret")
        .bind(1, serial)
        .bind(2, sync_secret)
        .bind(3, clock::iso8601())
        .run();
  }
  if (!hashes.empty()) {
    write_hashes(hashes);
    Statement(db_, statements_.get(),
              "UPDATE token_state SET agent_seen_version = max(agent_seen_version, ?1), "
              "updated_at = ?2 WHERE id = 1")
        .bind(1, agent_seen_version)
        .bind(2, clock::iso8601())
        .run();
  }
  TokenState result = read_token_state();
  tx.commit();
  return result;
}

void StateStore::clear_sync_secret() {
  std::lock_guard lock(mutex_);
  Transaction tx(db_, statements_.get());
  Statement(db_, statements_.get(), "UPDATE pairing SET sync_secret = '' WHERE id = 1").run();
  tx.commit();
}

void StateStore::record_attempt(const SyncAttempt& a) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_, statements_.get());
  Statement(db_, statements_.get(),
            "INSERT INTO sync_history (at_ms, origin, operation, backend, status, http_status, "
            "latency_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, a.at_ms)
      .bind(2, a.origin)
      .bind(3, a.operation)
      .bind(4, a.backend)
      .bind(5, a.status)
      .bind(6, std::int64_t{a.http_status})
      .bind(7, a.latency_ms)
      .bind(8, a.error)
      .run();
  Statement(db_, statements_.get(),
            "DELETE FROM sync_history WHERE id <= (SELECT max(id) FROM sync_history) - ?")
      .bind(1, static_cast<std::int64_t>(kHistoryLimit))
      .run();
  const bool ok = a.status == "ok";
  Statement(db_, statements_.get(), "INSERT OR IGNORE INTO origin_counters (origin) VALUES (?)")
      .bind(1, a.origin)
      .run();
  if (ok) {
    Statement(db_, statements_.get(),
              "UPDATE origin_counters SET successes = successes + 1, last_success_ms = ?, "
              "last_backend = CASE WHEN ? = '' THEN last_backend ELSE ? END WHERE origin = ?")
        .bind(1, a.at_ms)
        .bind(2, a.backend)
        .bind(3, a.backend)
        .bind(4, a.origin)
        .run();
  } else {
    Statement(db_, statements_.get(),
              "UPDATE origin_counters SET failures = failures + 1, last_failure_ms = ?, "
              "last_error = ?, last_backend = CASE WHEN ? = '' THEN last_backend ELSE ? END "
              "WHERE origin = ?")
        .bind(1, a.at_ms)
        .bind(2, a.error.empty() ? a.status : a.error)
        .bind(3, a.backend)
        .bind(4, a.backend)
        .bind(5, a.origin)
        .run();
  }
  tx.commit();
}

std::vector<SyncAttempt> StateStore::recent_attempts(std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<SyncAttempt> out;
  Statement s(db_, statements_.get(),
              "SELECT at_ms, origin, operation, backend, status, http_status, latency_ms, error "
              "FROM sync_history ORDER BY id DESC LIMIT ?");
  s.bind(1, static_cast<std::int64_t>(limit));
  while (s.step()) out.push_back(attempt_from_row(s));
  return out;
}

std::vector<SyncAttempt> StateStore::newest_attempt_per_origin(bool failures_only) const {
  std::vector<SyncAttempt> out;
  Statement s(db_, statements_.get(),
              failures_only
                  ? "SELECT at_ms, origin, operation, backend, status, http_status, "
                    "latency_ms, error FROM sync_history WHERE id IN (SELECT max(id) FROM "
                    "sync_history WHERE status <> 'ok' GROUP BY origin)"
                  : "SELECT at_ms, origin, operation, backend, status, http_status, "
                    "latency_ms, error FROM sync_history WHERE id IN (SELECT max(id) FROM "
                    "sync_history GROUP BY origin)");
  while (s.step()) out.push_back(attempt_from_row(s));
  return out;
}

std::vector<OriginCounters> StateStore::origin_counters() const {
  std::lock_guard lock(mutex_);
  std::vector<OriginCounters> out;
  Statement s(db_, statements_.get(),
              "SELECT origin, successes, failures, last_error, last_backend, last_success_ms, "
              "last_failure_ms FROM origin_counters ORDER BY origin");
  while (s.step()) {
    OriginCounters c;
    c.origin = s.text(0);
    c.successes = s.integer(1);
    c.failures = s.integer(2);
    c.last_error = s.text(3);
    c.last_backend = s.text(4);
    c.last_success_ms = s.integer(5);
    c.last_failure_ms = s.integer(6);
    out.push_back(std::move(c));
  }
  for (const bool failures_only : {false, true}) {
    for (SyncAttempt& a : newest_attempt_per_origin(failures_only)) {
      for (OriginCounters& c : out) {
        if (c.origin != a.origin) continue;
        (failures_only ? c.last_failed_attempt : c.last_attempt) = std::move(a);
        break;
      }
    }
  }
  return out;
}

std::optional<std::string> StateStore::meta(const std::string& key) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, statements_.get(), "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void StateStore::set_meta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  Statement(db_, statements_.get(),
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
            "excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

}  // namespace dinodia::agent
