// agent/StateStore: one transaction per applied response, versions never go backwards, 0600
// files, bounded history, clear errors on a read-only database with the old state intact.
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "agent/state_store.hpp"
#include "tests/support/process.hpp"

using dinodia::agent::OriginCounters;
using dinodia::agent::Pairing;
using dinodia::agent::StateStore;
using dinodia::agent::StateStoreError;
using dinodia::agent::SyncAttempt;
using dinodia::testing::TempDir;

namespace {
const std::string kH1(64, 'a');
const std::string kH2(64, 'b');
const std::string kH3(64, 'c');

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}
}  // namespace

TEST_CASE("fresh database: schema version - empty state - 0600 files", "[state]") {
  TempDir dir;
  const std::string path = StateStore::default_path(dir.path());
  StateStore store(path);
  CHECK(store.schema_version() == StateStore::kSchemaVersion);
  CHECK_FALSE(store.pairing().has_value());
  auto t = store.token_state();
  CHECK(t.hashes.empty());
  CHECK(t.agent_seen_version == 0);
  store.set_meta("k", "v");  // forces the WAL into existence
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
}

TEST_CASE("pairing and hashes survive reopening - versions only go up", "[state]") {
  TempDir dir;
  const std::string path = StateStore::default_path(dir.path());
  {
    StateStore store(path);
    auto t = store.apply_pair({"HUB-1", "secret-xyz", "2026-01-01T00:00:00.000Z", "https://a"},
                              {kH1}, 1, 0);
    CHECK(t.agent_seen_version == 1);
    t = store.apply_token_state({kH1, kH2}, 2, 1);
    CHECK(t.agent_seen_version == 2);
    // An older latestVersion (e.g. another origin lagging) never lowers the acknowledged one.
    t = store.apply_token_state({kH2}, 1, 1);
    CHECK(t.agent_seen_version == 2);
    CHECK(t.hashes == std::vector<std::string>{kH2});
    // No latestVersion at all keeps the version.
    t = store.apply_token_state({kH2, kH3}, std::nullopt, std::nullopt);
    CHECK(t.agent_seen_version == 2);
    CHECK_FALSE(t.latest_version.has_value());
  }
  StateStore reopened(path);
  auto p = reopened.pairing();
  REQUIRE(p.has_value());
  CHECK(p->serial == "HUB-1");
  CHECK(p->sync_secret == "secret-xyz");
  CHECK(p->origin == "https://a");
  auto t = reopened.token_state();
  CHECK(t.hashes == std::vector<std::string>{kH2, kH3});
  CHECK(t.agent_seen_version == 2);
  CHECK_FALSE(t.last_sync_at.empty());
}

TEST_CASE("pair with zero hashes keeps hashes and does not acknowledge the version", "[state]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  store.apply_token_state({kH1}, 3, 3);
  auto t = store.apply_pair({"HUB-1", "s", "now", "o"}, {}, 9, 9);
  CHECK(t.hashes == std::vector<std::string>{kH1});
  CHECK(t.agent_seen_version == 3);
  CHECK(store.pairing().has_value());
}

TEST_CASE("empty token-state hash list is refused and changes nothing", "[state]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  store.apply_token_state({kH1}, 4, 4);
  CHECK_THROWS_AS(store.apply_token_state({}, 5, 5), StateStoreError);
  CHECK(store.token_state().agent_seen_version == 4);
  CHECK(store.token_state().hashes.size() == 1);
}

TEST_CASE("clear_sync_secret forgets the pairing but keeps hashes", "[state]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  store.apply_pair({"HUB-1", "s", "now", "o"}, {kH1}, 1, 0);
  store.clear_sync_secret();
  CHECK_FALSE(store.pairing().has_value());
  CHECK(store.token_state().hashes.size() == 1);
}

TEST_CASE("import only raises the version and keeps state when fields are empty", "[state]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  store.apply_token_state({kH1}, 7, 7);
  auto t = store.import_state({kH2}, 5, "", "HUB-1");
  CHECK(t.agent_seen_version == 7);
  CHECK(t.hashes == std::vector<std::string>{kH2});
  CHECK_FALSE(store.pairing().has_value());
  store.import_state({}, 9, "legacy-secret", "HUB-1");
  CHECK(store.token_state().hashes == std::vector<std::string>{kH2});
  CHECK(store.token_state().agent_seen_version == 7);  // no hashes → no version change
  REQUIRE(store.pairing().has_value());
  CHECK(store.pairing()->sync_secret == "legacy-secret");
}

TEST_CASE("history is bounded and counters are per origin", "[state]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  for (int i = 0; i < 250; ++i) {
    SyncAttempt a;
    a.at_ms = 1000 + i;
    a.origin = i % 2 ? "https://aws" : "https://vercel";
    a.operation = "token-state";
    a.backend = i % 2 ? "aws" : "vercel";
    a.status = i % 5 == 0 ? "server_error" : "ok";
    a.http_status = i % 5 == 0 ? 500 : 200;
    a.error = i % 5 == 0 ? "HTTP 500" : "";
    store.record_attempt(a);
  }
  auto recent = store.recent_attempts(1000);
  CHECK(recent.size() == StateStore::kHistoryLimit);
  CHECK(recent.front().at_ms == 1249);
  auto counters = store.origin_counters();
  REQUIRE(counters.size() == 2);
  std::int64_t total = 0;
  for (const auto& c : counters) {
    total += c.successes + c.failures;
    if (c.origin == "https://vercel") {
      CHECK(c.failures == 25);  // i % 10 == 0: every 5th attempt that went to vercel
      CHECK(c.last_error == "HTTP 500");
      CHECK(c.last_backend == "vercel");
    }
  }
  CHECK(total == 250);
}

TEST_CASE("per origin: newest attempt and newest failure from the history - persisted", "[state]") {
  TempDir dir;
  auto attempt = [](std::int64_t at, const std::string& origin, const std::string& status,
                    const std::string& backend) {
    SyncAttempt a;
    a.at_ms = at;
    a.origin = origin;
    a.operation = "token-state";
    a.backend = backend;
    a.status = status;
    a.http_status = status == "ok" ? 200 : status == "timeout" ? 0 : 401;
    a.latency_ms = at % 1000;
    a.error = status == "ok" ? "" : status;
    return a;
  };
  {
    StateStore store(StateStore::default_path(dir.path()));
    store.record_attempt(attempt(1001, "https://aws", "not_paired", ""));
    store.record_attempt(attempt(1002, "https://vercel", "ok", "vercel"));
    store.record_attempt(attempt(1003, "https://aws", "timeout", ""));
    store.record_attempt(attempt(1004, "https://vercel", "ok", "vercel"));
    store.record_attempt(attempt(1005, "https://aws", "ok", ""));
  }
  StateStore store(StateStore::default_path(dir.path()));  // a restart keeps them
  auto counters = store.origin_counters();
  REQUIRE(counters.size() == 2);
  const OriginCounters& aws = counters[0];
  const OriginCounters& vercel = counters[1];
  REQUIRE(aws.origin == "https://aws");
  REQUIRE(aws.last_attempt.has_value());
  CHECK(aws.last_attempt->at_ms == 1005);
  CHECK(aws.last_attempt->status == "ok");
  CHECK(aws.last_attempt->backend.empty());  // straight to the origin: no Worker header
  REQUIRE(aws.last_failed_attempt.has_value());
  CHECK(aws.last_failed_attempt->at_ms == 1003);
  CHECK(aws.last_failed_attempt->status == "timeout");
  CHECK(aws.last_failed_attempt->latency_ms == 3);
  REQUIRE(vercel.last_attempt.has_value());
  CHECK(vercel.last_attempt->at_ms == 1004);
  CHECK(vercel.last_attempt->backend == "vercel");
  CHECK_FALSE(vercel.last_failed_attempt.has_value());

  // A failure older than the bounded history is no longer detailed; the counters keep its time.
  for (std::size_t i = 0; i < StateStore::kHistoryLimit; ++i) {
    store.record_attempt(attempt(2000 + static_cast<std::int64_t>(i), "https://vercel", "ok", ""));
  }
  counters = store.origin_counters();
  REQUIRE(counters.size() == 2);
  CHECK_FALSE(counters[0].last_attempt.has_value());
  CHECK_FALSE(counters[0].last_failed_attempt.has_value());
  CHECK(counters[0].last_failure_ms == 1003);
}

TEST_CASE("read-only database: clear error - previous state intact", "[state]") {
  TempDir dir;
  const std::string path = StateStore::default_path(dir.path());
  {
    StateStore store(path);
    store.apply_pair({"HUB-1", "s", "now", "o"}, {kH1}, 1, 0);
  }
  StateStore ro(path, /*read_only=*/true);
  try {
    ro.apply_token_state({kH2}, 2, 2);
    FAIL("write to a read-only database succeeded");
  } catch (const StateStoreError& e) {
    CHECK(std::string(e.what()).find("state database") != std::string::npos);
  }
  CHECK(ro.token_state().hashes == std::vector<std::string>{kH1});
  CHECK(ro.token_state().agent_seen_version == 1);
  StateStore rw(path);
  CHECK(rw.token_state().agent_seen_version == 1);
}

TEST_CASE("status-style read-only open of a non-database fails clearly", "[state]") {
  TempDir dir;
  dinodia::testing::write_file(dir.file("empty.db"), "");
  CHECK_THROWS_AS(StateStore(dir.file("empty.db"), /*read_only=*/true), StateStoreError);
  CHECK_THROWS_AS(StateStore(dir.file("missing/x.db")), StateStoreError);
}
