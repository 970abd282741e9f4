#include "telemetry/usage_store.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace dinodia::telemetry {
namespace {

constexpr const char* kHeating = "heating_usage";
constexpr const char* kElectric = "electric_usage";

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

enum class FileRead { missing, ok, error };

FileRead read_file(const std::string& path, std::string& out) {
  if (path.empty()) return FileRead::missing;
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno == ENOENT ? FileRead::missing : FileRead::error;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return FileRead::error;
  out = ss.str();
  return FileRead::ok;
}

// Reads one legacy usage file and hands it to `apply` when it is a JSON object of the expected
// schema; anything else is logged and skipped. Returns false only when the file exists but could
// not be read, so the import is retried at the next start.
template <class Apply>
bool import_legacy_file(const std::string& path, int schema, const char* ignored_message,
                        Apply apply) {
  std::string text;
  switch (read_file(path, text)) {
    case FileRead::missing:
      return true;
    case FileRead::error:
      return false;
    case FileRead::ok:
      break;
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.value("schemaVersion", nlohmann::json()) == schema) {
    apply(j);
  } else {
    log::warn(ignored_message, log::Fields().add("path", path));
  }
  return true;
}

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

LegacyImportResult UsageStore::import_legacy_once(const std::string& heating_path,
                                                  const std::string& electric_path,
                                                  HeatingTracker& heating,
                                                  ElectricTracker& electric) {
  LegacyImportResult result;
  {
    Stmt st;
    sqlite3_prepare_v2(db_, "SELECT 1 FROM telemetry_meta WHERE key = 'legacy_import_done'", -1,
                       &st.s, nullptr);
    if (st.s == nullptr) throw StoreError(std::string("usage database: ") + sqlite3_errmsg(db_));
    if (sqlite3_step(st.s) == SQLITE_ROW) {
      result.already_done = true;
      return result;
    }
  }
  exec("BEGIN IMMEDIATE");
  try {
    if (!read_state(kHeating) &&
        !import_legacy_file(heating_path, 2,
                            "Legacy heating usage state ignored (not a schema-2 state)",
                            [&](const nlohmann::json& j) {
                              HeatingTracker imported = heating;
                              result.dropped_entries += imported.load_json(j);
                              result.heating_entities = imported.entries().size();
                              heating = std::move(imported);
                              write_state(kHeating, heating.to_json().dump());
                              heating_saved_rev_ = heating.revision();
                              result.heating_imported = true;
                            })) {
      result.retry_next_start = true;
    }
    if (!read_state(kElectric) &&
        !import_legacy_file(
            electric_path, 1, "Legacy electric usage state ignored (not a schema-1 state)",
            [&](const nlohmann::json& j) {
              result.dropped_entries += electric.load_json(j);
              result.electric_rows = electric.entities().size() + electric.pending().size();
              write_state(kElectric, electric.to_json().dump());
              electric_saved_rev_ = electric.revision();
              result.electric_imported = true;
            })) {
      result.retry_next_start = true;
    }
    if (!result.retry_next_start) {
      exec(
          "INSERT INTO telemetry_meta (key, value) VALUES ('legacy_import_done', datetime('now'))");
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  if (result.heating_imported || result.electric_imported) {
    log::info("Imported legacy usage state", log::Fields()
                                                 .add("heatingEntities", result.heating_entities)
                                                 .add("electricRows", result.electric_rows)
                                                 .add("dropped", result.dropped_entries));
  }
  return result;
}

}  // namespace dinodia::telemetry
