#pragma once
// The 0.4.17 agent's token state file (/data/dinodia_token_state.json,
// docs/compatibility.md#token-state-file).
//
// Upgrade: read it on first start so the hub keeps its pairing and hashes without re-pairing.
// Rollback: keep writing it in the legacy shape after every applied change, so the legacy agent
// started on the same /data finds the current sync secret, hashes and version. Written atomically
// (temp file + fsync + rename + directory fsync), mode 0600 (docs/compatibility.md#w4, #w12).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/environment.hpp"
#include "agent/state_store.hpp"

namespace dinodia::agent {

struct LegacyTokenState {
  std::int64_t agent_seen_version = 0;
  std::string sync_secret;          // trimmed; empty = none
  std::vector<std::string> hashes;  // trimmed, lowercased, empties dropped
};

// DINODIA_TOKEN_STATE_PATH if set, else <data_dir>/dinodia_token_state.json.
std::string legacy_token_state_path(const Environment& env);

// Parses the file's text with the legacy loader's rules: hashes are strings trimmed and
// lowercased with empties dropped (non-strings skipped); agentSeenVersion is the first of
// agentSeenVersion | latestVersion | version that is a JSON number (floored), else 0; syncSecret
// trimmed. Returns nullopt (and sets `error`) if the text is not a JSON object.
std::optional<LegacyTokenState> parse_legacy_token_state(const std::string& text,
                                                         std::string* error = nullptr);

// The file's text in the legacy shape (2-space pretty JSON, as JSON.stringify(state, null, 2)).
std::string render_legacy_token_state(const TokenState& state, const std::string& sync_secret);

// Writes `content` to `path` atomically with mode 0600. Throws std::runtime_error with the
// reason; on failure the previous file is left untouched and the temp file removed.
void write_file_atomically(const std::string& path, const std::string& content);

// Keeps the legacy file and the database in step.
class LegacyTokenStateFile {
 public:
  LegacyTokenStateFile(std::string path, StateStore& store);

  // At start-up: imports the file if this database has never seen it, or if its content is not
  // what this agent last wrote (the legacy agent ran in between: a rollback and re-upgrade).
  // A missing file is fine; a malformed one is ignored with a warning. Returns true if imported.
  bool import_if_new(const std::string& serial);
  // Writes the current database state in the legacy shape. Logs a warning on failure (the
  // database remains the source of truth); returns false then.
  bool export_current();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  StateStore& store_;
};

}  // namespace dinodia::agent
