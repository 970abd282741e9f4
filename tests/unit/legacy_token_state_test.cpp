// agent/legacy_token_state: the 0.4.17 loader rules (docs/compatibility.md#token-state-file), the
// legacy shape written back, atomic 0600 writes, and the import/export round trip with the state
// database.
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/environment.hpp"
#include "agent/legacy_token_state.hpp"
#include "agent/state_store.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using dinodia::testing::read_file;
using dinodia::testing::TempDir;
using dinodia::testing::write_file;

namespace {
const std::string kH1(64, 'a');
const std::string kH2(64, 'b');
unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}
}  // namespace

TEST_CASE("agentSeenVersion key variants in legacy precedence", "[legacy]") {
  CHECK(parse_legacy_token_state(R"({"agentSeenVersion":7,"latestVersion":9,"version":3})")
            ->agent_seen_version == 7);
  CHECK(parse_legacy_token_state(R"({"latestVersion":9,"version":3})")->agent_seen_version == 9);
  CHECK(parse_legacy_token_state(R"({"version":3})")->agent_seen_version == 3);
  // A non-number is skipped, the next key is used.
  CHECK(parse_legacy_token_state(R"({"agentSeenVersion":"7","version":4})")->agent_seen_version ==
        4);
  CHECK(parse_legacy_token_state(R"({"agentSeenVersion":5.9})")->agent_seen_version == 5);
  CHECK(parse_legacy_token_state(R"({})")->agent_seen_version == 0);
}

TEST_CASE("hashes are trimmed - lowercased - empties and non-strings dropped", "[legacy]") {
  auto s = parse_legacy_token_state(
      R"({"hubTokenHashes":[" AAAA ","",  "   ", 5, null, "bb"],"syncSecret":"  sec  "})");
  REQUIRE(s.has_value());
  CHECK(s->hashes == std::vector<std::string>{"aaaa", "bb"});
  CHECK(s->sync_secret == "sec");
  CHECK(parse_legacy_token_state(R"({"syncSecret":"   "})")->sync_secret.empty());
  CHECK(parse_legacy_token_state(R"({"hubTokenHashes":"x"})")->hashes.empty());
}

TEST_CASE("malformed files are reported - not parsed", "[legacy]") {
  std::string err;
  CHECK_FALSE(parse_legacy_token_state("{not json", &err).has_value());
  CHECK(err == "not valid JSON");
  CHECK_FALSE(parse_legacy_token_state("[1,2]", &err).has_value());
  CHECK(err == "not a JSON object");
  CHECK_FALSE(parse_legacy_token_state("", &err).has_value());
}

TEST_CASE("rendered file is the legacy shape and reads back", "[legacy]") {
  TokenState t;
  t.hashes = {kH1, kH2};
  t.agent_seen_version = 4;
  t.latest_version = 4;
  t.updated_at = "2026-01-01T00:00:00.000Z";
  const std::string text = render_legacy_token_state(t, "the-secret");
  auto j = nlohmann::ordered_json::parse(text);
  auto it = j.begin();
  CHECK(it.key() == "agentSeenVersion");
  CHECK(j["syncSecret"] == "the-secret");
  CHECK(j["publishedVersion"].is_null());
  CHECK(j["latestVersion"] == 4);
  CHECK(text.find("\n  \"hubTokenHashes\": [\n    \"") != std::string::npos);  // 2-space indent
  auto back = parse_legacy_token_state(text);
  CHECK(back->hashes == t.hashes);
  CHECK(back->agent_seen_version == 4);
  CHECK(back->sync_secret == "the-secret");
}

TEST_CASE("atomic write: 0600 - replaces - and leaves the old file on failure", "[legacy]") {
  TempDir dir;
  const std::string path = dir.file("dinodia_token_state.json");
  write_file(path, "old");
  ::chmod(path.c_str(), 0644);
  write_file_atomically(path, "new");
  CHECK(read_file(path) == "new");
  CHECK(mode_of(path) == 0600);
  // Failure: the target's directory is not writable → the old file stays, no temp left behind.
  if (::geteuid() != 0) {
    ::chmod(dir.path().c_str(), 0500);
    CHECK_THROWS(write_file_atomically(path, "newer"));
    ::chmod(dir.path().c_str(), 0700);
    CHECK(read_file(path) == "new");
  }
  // A path whose directory does not exist fails cleanly too.
  CHECK_THROWS(write_file_atomically(dir.file("nope/file.json"), "x"));
  // A directory in place of the target: rename fails, old content elsewhere untouched.
  ::mkdir(dir.file("isdir").c_str(), 0700);
  ::mkdir(dir.file("isdir/child").c_str(), 0700);
  CHECK_THROWS(write_file_atomically(dir.file("isdir"), "x"));
  CHECK(dinodia::testing::file_exists(dir.file("isdir/child")));
  CHECK_FALSE(dinodia::testing::file_exists(dir.file("isdir.tmp-" + std::to_string(::getpid()))));
}

TEST_CASE("import on first start - then export keeps the file current", "[legacy]") {
  TempDir dir;
  const std::string legacy = dir.file("dinodia_token_state.json");
  write_file(legacy, R"({"version":6,"syncSecret":" s3cret ","hubTokenHashes":[")" + kH1 +
                         R"("],"updatedAt":"x"})");
  StateStore store(StateStore::default_path(dir.path()));
  LegacyTokenStateFile file(legacy, store);
  CHECK(file.import_if_new("HUB-1"));
  CHECK(store.pairing()->sync_secret == "s3cret");
  CHECK(store.token_state().agent_seen_version == 6);
  CHECK(store.token_state().hashes == std::vector<std::string>{kH1});
  CHECK_FALSE(file.import_if_new("HUB-1"));  // same content: not again

  store.apply_token_state({kH1, kH2}, 7, 6);
  REQUIRE(file.export_current());
  CHECK(mode_of(legacy) == 0600);
  auto back = parse_legacy_token_state(read_file(legacy));
  CHECK(back->agent_seen_version == 7);
  CHECK(back->hashes == std::vector<std::string>{kH1, kH2});
  CHECK(back->sync_secret == "s3cret");
  CHECK_FALSE(file.import_if_new("HUB-1"));  // our own write is not re-imported

  // Rollback then re-upgrade: the legacy agent wrote a newer state → imported.
  const std::string kH3(64, 'c');
  write_file(legacy,
             R"({"agentSeenVersion":8,"syncSecret":"s3cret","hubTokenHashes":[")" + kH3 + R"("]})");
  CHECK(file.import_if_new("HUB-1"));
  CHECK(store.token_state().agent_seen_version == 8);
  CHECK(store.token_state().hashes == std::vector<std::string>{kH3});
}

TEST_CASE("malformed legacy file is ignored and the database untouched", "[legacy]") {
  TempDir dir;
  const std::string legacy = dir.file("dinodia_token_state.json");
  write_file(legacy, "{garbage");
  StateStore store(StateStore::default_path(dir.path()));
  store.apply_token_state({kH1}, 2, 2);
  LegacyTokenStateFile file(legacy, store);
  CHECK_FALSE(file.import_if_new("HUB-1"));
  CHECK(store.token_state().agent_seen_version == 2);
  CHECK(read_file(legacy) == "{garbage");  // not overwritten by the import attempt
}

TEST_CASE("DINODIA_TOKEN_STATE_PATH overrides the default path", "[legacy]") {
  // Read as the agent does: the environment once, then the path from it.
  auto path_with_data_dir = [](const char* data_dir) {
    Environment env = read_environment();
    env.data_dir = data_dir;
    return legacy_token_state_path(env);
  };
  ::unsetenv("DINODIA_TOKEN_STATE_PATH");
  CHECK(path_with_data_dir("/data") == "/data/dinodia_token_state.json");
  ::setenv("DINODIA_TOKEN_STATE_PATH", "/tmp/x.json", 1);
  CHECK(path_with_data_dir("/data") == "/tmp/x.json");
  ::unsetenv("DINODIA_TOKEN_STATE_PATH");
}
