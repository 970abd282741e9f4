#include "telemetry/usage_store.hpp"

#include <sqlite3.h>

#include "common/clock.hpp"

namespace dinodia::telemetry {
namespace {

constexpr const char* kHeating = "heating_usage";
constexpr const char* kElectric = "electric_usage";

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

UsageStore::UsageStore(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError("cannot open usage database " + path + ": " + msg);
  }
  // The agent's own connection writes the same file; wait for it rather than failing.
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("PRAGMA journal_mode=WAL");
    // NORMAL: in WAL mode a commit is in the OS's hands when it returns, so a kill -9 loses
    // nothing, and no fsync per commit keeps write-through of every state change cheap (it
    // runs on the bridge's io_context). A power cut may roll back the last commits since the
    // previous checkpoint, never corrupt the file.
    exec("PRAGMA synchronous=NORMAL");
    exec(
        "CREATE TABLE IF NOT EXISTS telemetry_usage_state ("
        " name TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS telemetry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

UsageStore::~UsageStore() {
  sqlite3_close(db_);
}

void UsageStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw StoreError(std::string("usage database: ") + msg);
  }
}

std::optional<std::string> UsageStore::read_state(const char* name) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT data FROM telemetry_usage_state WHERE name = ?1", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(st.s, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
  return std::string(text ? text : "");
}

void UsageStore::write_state(const char* name, const std::string& json) {
  Stmt st;
  if (sqlite3_prepare_v2(
          db_,
          "INSERT INTO telemetry_usage_state (name, data, updated_at) VALUES (?1, ?2, ?3)"
          " ON CONFLICT(name) DO UPDATE SET data = excluded.data,"
          " updated_at = excluded.updated_at",
          -1, &st.s, nullptr) != SQLITE_OK) {
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  }
  const std::string now = clock::iso8601();
  sqlite3_bind_text(st.s, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st.s, 2, json.data(), static_cast<int>(json.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, now.c_str(), -1, SQLITE_TRANSIENT);
  // A single statement is its own transaction: the row is replaced whole or not at all.
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
}

bool UsageStore::load(HeatingTracker& heating) {
  auto text = read_state(kHeating);
  if (!text) return false;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) throw StoreError("usage database: heating state is not valid JSON");
  heating.load_json(j);
  heating_saved_rev_ = heating.revision();
  return true;
}

bool UsageStore::load(ElectricTracker& electric) {
  auto text = read_state(kElectric);
  if (!text) return false;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) throw StoreError("usage database: electric state is not valid JSON");
  electric.load_json(j);
  electric_saved_rev_ = electric.revision();
  return true;
}

void UsageStore::save(const HeatingTracker& heating) {
  if (heating_saved_rev_ == heating.revision()) return;
  write_state(kHeating, heating.to_json().dump());
  heating_saved_rev_ = heating.revision();
}

void UsageStore::save(const ElectricTracker& electric) {
  if (electric_saved_rev_ == electric.revision()) return;
  write_state(kElectric, electric.to_json().dump());
  electric_saved_rev_ = electric.revision();
}

void UsageStore::save(const HeatingTracker& heating, const ElectricTracker& electric) {
  const bool heating_due = heating_saved_rev_ != heating.revision();
  const bool electric_due = electric_saved_rev_ != electric.revision();
  if (!heating_due && !electric_due) return;
  exec("BEGIN IMMEDIATE");
  try {
    if (heating_due) write_state(kHeating, heating.to_json().dump());
    if (electric_due) write_state(kElectric, electric.to_json().dump());
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  heating_saved_rev_ = heating.revision();
  electric_saved_rev_ = electric.revision();
}

std::optional<std::string> UsageStore::meta(const std::string& key) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM telemetry_meta WHERE key = ?1", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
  return std::string(text ? text : "");
}

void UsageStore::set_meta(const std::string& key, const std::string& value) {
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT INTO telemetry_meta (key, value) VALUES (?1, ?2)"
                         " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
}

}  // namespace dinodia::telemetry
