#include "agent/legacy_usage_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <utility>

#include <nlohmann/json.hpp>

#include "agent/legacy_token_state.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"

namespace dinodia::agent {
namespace {

using Json = nlohmann::json;
using Ordered = nlohmann::ordered_json;
using telemetry::ElectricTracker;
using telemetry::HeatingTracker;

// SHA-256 of the text this agent last wrote to each file, and of the content it last imported
// (or ignored as malformed) from it.
constexpr const char* kHeatingWritten = "legacy_heating_file_written_sha256";
constexpr const char* kHeatingImported = "legacy_heating_file_imported_sha256";
constexpr const char* kElectricWritten = "legacy_electric_file_written_sha256";
constexpr const char* kElectricImported = "legacy_electric_file_imported_sha256";
// Set by builds that imported the files once and never wrote them.
constexpr const char* kOneTimeImportDone = "legacy_import_done";

// 0.4.17's key orders (docs/compatibility.md#usage-files).
constexpr std::initializer_list<const char*> kHeatingEntityKeys = {"label",
                                                                   "onSeconds",
                                                                   "offSeconds",
                                                                   "unknownSeconds",
                                                                   "efficiencyWeightedOnSeconds",
                                                                   "efficiencyOnSeconds",
                                                                   "efficiencyBand",
                                                                   "efficiencyBandVersion",
                                                                   "lastHeatEndAt",
                                                                   "heatRunStartedAt",
                                                                   "heatRunStartOutputFraction",
                                                                   "lastSeenAt",
                                                                   "lastWasOn",
                                                                   "lastWasKnown",
                                                                   "dirty",
                                                                   "lastProcessed",
                                                                   "lastProcessedAt"};
constexpr std::initializer_list<const char*> kSnapshotKeys = {"state", "hvac_mode", "current",
                                                              "target"};
constexpr std::initializer_list<const char*> kElectricEntryKeys = {
    "entityId",        "entityName", "trackingStartedAt", "trackingEpoch", "assignmentStartedAt",
    "assignmentEpoch", "areaId",     "areaName",          "onSeconds",     "offSeconds",
    "unknownSeconds",  "lastSeenAt", "lastWasOn",         "lastWasKnown",  "retired",
    "dirty",           "retiredAt"};

// A scalar, or a container with the keys in nlohmann's (sorted) order.
Ordered ordered(const Json& v) {
  if (v.is_object()) {
    Ordered o = Ordered::object();
    for (const auto& [k, x] : v.items()) o[k] = ordered(x);
    return o;
  }
  if (v.is_array()) {
    Ordered a = Ordered::array();
    for (const auto& x : v) a.push_back(ordered(x));
    return a;
  }
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) return v.get<double>();
  if (v.is_string()) return v.get<std::string>();
  return nullptr;
}

// `v`'s keys among `keys`, in that order; nothing else.
Ordered pick(const Json& v, std::initializer_list<const char*> keys) {
  Ordered o = Ordered::object();
  for (const char* k : keys) {
    if (auto it = v.find(k); it != v.end()) o[k] = ordered(*it);
  }
  return o;
}

std::string legacy_usage_path(const std::optional<std::string>& env_path,
                              const std::string& option_path, const std::string& data_dir,
                              const std::string& file_name) {
  if (env_path) return *env_path;
  if (option_path == "/data/" + file_name) return data_dir + "/" + file_name;
  return option_path;
}

enum class FileRead { missing, ok, error };

FileRead read_text(const std::string& path, std::string& out, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return FileRead::missing;
    error = std::strerror(errno);
    return FileRead::error;
  }
  out.clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      error = std::strerror(errno);
      ::close(fd);
      return FileRead::error;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return FileRead::ok;
}

// One file's part of import_changed. Returns the parsed state when it is to be imported; sets
// `record` to the digest to remember as imported once the import is saved.
std::optional<Json> take_if_changed(telemetry::UsageStore& store, const std::string& path,
                                    bool stored, int schema, const char* written_key,
                                    const char* imported_key, const char* ignored_message,
                                    std::optional<std::string>& record) {
  if (path.empty()) return std::nullopt;
  std::string text;
  std::string error;
  switch (read_text(path, text, error)) {
    case FileRead::missing:
      return std::nullopt;
    case FileRead::error:
      log::warn("Could not read the legacy usage file; trying again at the next start",
                log::Fields().add("path", path).add("error", error));
      return std::nullopt;
    case FileRead::ok:
      break;
  }
  const std::string digest = crypto::sha256_hex(text);
  const auto written = store.meta(written_key);
  if (written == digest || store.meta(imported_key) == digest) return std::nullopt;
  if (stored) {
    if (!written && store.meta(kOneTimeImportDone)) {
      // A database from before the files were kept current: it imported this 0.4.17 file once
      // and has counted on since, so the file is older than the database.
      record = digest;
      return std::nullopt;
    }
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("schemaVersion", Json()) != Json(schema) ||
      !j.contains("entities") || !j["entities"].is_object()) {
    log::warn(ignored_message, log::Fields().add("path", path));
    record = digest;  // warned once; the next save overwrites it
    return std::nullopt;
  }
  record = digest;
  return j;
}

}  // namespace

std::string legacy_heating_usage_path(const Options& options, const Environment& env) {
  return legacy_usage_path(env.heating_usage_state_path, options.heating_usage_persist_path,
                           env.data_dir, "heating_usage_state.json");
}

std::string legacy_electric_usage_path(const Options& options, const Environment& env) {
  return legacy_usage_path(env.electric_usage_state_path, options.electric_usage_persist_path,
                           env.data_dir, "electric_usage_state.json");
}

std::string render_legacy_heating_usage(const HeatingTracker& heating,
                                        const std::string& updated_at) {
  const Json state = heating.to_json();
  const Json& entities = state["entities"];
  Ordered out = Ordered::object();
  out["schemaVersion"] = 2;
  out["updatedAt"] = updated_at;
  out["lastResetAt"] = ordered(state["lastResetAt"]);
  out["config"] = pick(state["config"], {"efficiencyBandsVersion", "defaultBoilerEfficiencyBand",
                                         "boilerBandsByEntityId"});
  Ordered ents = Ordered::object();
  for (const auto& e : heating.entries()) {  // insertion order, as 0.4.17 keeps it
    auto it = entities.find(e.entity_id);
    if (it == entities.end()) continue;
    Ordered row = pick(*it, kHeatingEntityKeys);
    if (it->value("lastProcessed", Json()).is_object()) {
      row["lastProcessed"] = pick((*it)["lastProcessed"], kSnapshotKeys);
    }
    ents[e.entity_id] = std::move(row);
  }
  out["entities"] = std::move(ents);
  return out.dump(2);
}

std::string render_legacy_electric_usage(const ElectricTracker& electric,
                                         const std::string& updated_at) {
  const Json state = electric.to_json();
  const Json& entities = state["entities"];
  Ordered out = Ordered::object();
  out["schemaVersion"] = 1;
  out["updatedAt"] = updated_at;
  out["lastResetAt"] = ordered(state["lastResetAt"]);
  out["resetAckPendingAt"] = ordered(state["resetAckPendingAt"]);
  Ordered ents = Ordered::object();
  for (const auto& e : electric.entities()) {
    auto it = entities.find(e.entity_id);
    if (it != entities.end()) ents[e.entity_id] = pick(*it, kElectricEntryKeys);
  }
  out["entities"] = std::move(ents);
  Ordered pending = Ordered::array();
  for (const auto& p : state["pending"]) pending.push_back(pick(p, kElectricEntryKeys));
  out["pending"] = std::move(pending);
  return out.dump(2);
}

LegacyUsageFiles::LegacyUsageFiles(std::string heating_path, std::string electric_path,
                                   telemetry::UsageStore& store)
    : heating_path_(std::move(heating_path)),
      electric_path_(std::move(electric_path)),
      store_(store) {}

LegacyUsageImport LegacyUsageFiles::import_changed(HeatingTracker& heating, bool heating_stored,
                                                   ElectricTracker& electric,
                                                   bool electric_stored) {
  LegacyUsageImport result;
  std::optional<std::string> heating_digest;
  std::optional<std::string> electric_digest;
  if (auto file = take_if_changed(
          store_, heating_path_, heating_stored, 2, kHeatingWritten, kHeatingImported,
          "Legacy heating usage state ignored (not a schema-2 state)", heating_digest)) {
    // The file's state replaces the stored one (its counters already include what this agent
    // wrote); what 0.4.17 does not keep comes from the stored state.
    const Json ours = heating.to_json();
    if (file->value("lastResetAt", Json()) == ours.value("lastResetAt", Json())) {
      (*file)["resetAckDone"] = ours.value("resetAckDone", false);  // same reset: confirmed?
    } else {
      file->erase("resetAckDone");  // 0.4.17 took a new reset: acknowledge it
    }
    const Json& our_entities = ours["entities"];
    Json& entities = (*file)["entities"];
    for (auto entry = entities.begin(); entry != entities.end(); ++entry) {
      auto it = our_entities.find(entry.key());
      if (entry->is_object() && it != our_entities.end() && it->contains("lastAckedAtMs")) {
        (*entry)["lastAckedAtMs"] = (*it)["lastAckedAtMs"];
      }
    }
    HeatingTracker next = heating;
    result.dropped_entries += next.load_json(*file);
    heating = std::move(next);
    result.heating_imported = true;
    result.heating_entities = heating.entries().size();
    result.after_rollback = result.after_rollback || heating_stored;
  }
  if (auto file = take_if_changed(
          store_, electric_path_, electric_stored, 1, kElectricWritten, kElectricImported,
          "Legacy electric usage state ignored (not a schema-1 state)", electric_digest)) {
    ElectricTracker next = electric;
    result.dropped_entries += next.load_json(*file);
    electric = std::move(next);
    result.electric_imported = true;
    result.electric_rows = electric.entities().size() + electric.pending().size();
    result.after_rollback = result.after_rollback || electric_stored;
  }
  if (result.heating_imported || result.electric_imported) store_.save(heating, electric);
  // Only once the import is saved: a kill before this imports the same content again.
  if (heating_digest) store_.set_meta(kHeatingImported, *heating_digest);
  if (electric_digest) store_.set_meta(kElectricImported, *electric_digest);
  return result;
}

void LegacyUsageFiles::export_changed(const HeatingTracker& heating,
                                      const ElectricTracker& electric) {
  const std::string now = clock::iso8601();
  // A revision of 0 is a tracker that never held state: 0.4.17 needs no file for it.
  if (!heating_path_.empty() && heating.revision() != 0 &&
      heating_written_rev_ != heating.revision()) {
    if (write(heating_path_, render_legacy_heating_usage(heating, now), kHeatingWritten,
              heating_failing_)) {
      heating_written_rev_ = heating.revision();
    }
  }
  if (!electric_path_.empty() && electric.revision() != 0 &&
      electric_written_rev_ != electric.revision()) {
    if (write(electric_path_, render_legacy_electric_usage(electric, now), kElectricWritten,
              electric_failing_)) {
      electric_written_rev_ = electric.revision();
    }
  }
}

bool LegacyUsageFiles::write(const std::string& path, const std::string& text,
                             const char* digest_key, bool& failing) {
  try {
    write_file_atomically(path, text);
  } catch (const std::exception& e) {
    if (!failing) {
      log::warn("Could not update the legacy usage file; a rollback would resume from older totals",
                log::Fields().add("path", path).add("error", e.what()));
    }
    failing = true;
    return false;
  }
  if (failing) log::info("Legacy usage file updated again", log::Fields().add("path", path));
  failing = false;
  try {
    // After the rename: a kill before this leaves the file's (current) content unrecorded,
    // which the next start imports again without loss.
    store_.set_meta(digest_key, crypto::sha256_hex(text));
  } catch (const std::exception& e) {
    log::warn("Could not record the legacy usage file's digest",
              log::Fields().add("path", path).add("error", e.what()));
  }
  return true;
}

}  // namespace dinodia::agent
