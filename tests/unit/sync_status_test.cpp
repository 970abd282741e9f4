// agent/sync_status_endpoint: the body of GET /_dinodia/sync-status
// (docs/compatibility.md#sync-status) keeps every field it had, in order, and adds per origin where
// the sync went (role, host, the last attempt and the last failure with its class, latency and
// backend header).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/options.hpp"
#include "agent/state_store.hpp"
#include "agent/sync_status_endpoint.hpp"
#include "ha_bridge/token_registry.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using dinodia::testing::TempDir;

namespace {

std::vector<std::string> keys_of(const nlohmann::ordered_json& j) {
  std::vector<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  return out;
}

SyncAttempt attempt(std::int64_t at, const std::string& origin, const std::string& status,
                    int http_status, std::int64_t latency, const std::string& backend,
                    const std::string& error) {
  SyncAttempt a;
  a.at_ms = at;
  a.origin = origin;
  a.operation = "token-state";
  a.status = status;
  a.http_status = http_status;
  a.latency_ms = latency;
  a.backend = backend;
  a.error = error;
  return a;
}

}  // namespace

TEST_CASE("sync-status: earlier fields unchanged and in order - per-origin detail appended",
          "[sync]") {
  TempDir dir;
  StateStore store(StateStore::default_path(dir.path()));
  store.record_attempt(attempt(1'700'000'000'000, "https://api-origin.example", "not_paired", 401,
                               42, "", "HTTP 401: Hub not paired yet."));
  store.record_attempt(
      attempt(1'700'000'000'100, "https://app.example", "ok", 200, 57, "vercel", ""));
  Options options;
  options.platform_sync_enabled = true;
  options.platform_base_url = "https://app.example";
  options.platform_canary_base_url = "https://api-origin.example/";
  dinodia::ha_bridge::TokenRegistry tokens;

  const nlohmann::ordered_json j = sync_status_json(options, &store, tokens);
  CHECK(keys_of(j) == std::vector<std::string>{"ok", "platformSyncEnabled", "agentSeenVersion",
                                               "hashes", "hasSyncSecret", "electricUsage",
                                               "origins", "lastAttempt"});
  CHECK(keys_of(j["lastAttempt"]) == std::vector<std::string>{"at", "origin", "operation", "status",
                                                              "httpStatus", "backend",
                                                              "latencyMs"});
  CHECK(j["lastAttempt"]["backend"] == "vercel");
  REQUIRE(j["origins"].size() == 2);
  const auto& canary = j["origins"][0];
  const auto& primary = j["origins"][1];
  CHECK(keys_of(canary) == std::vector<std::string>{"origin", "role", "successes", "failures",
                                                    "lastError", "lastBackend", "lastSuccessAt",
                                                    "lastFailureAt", "host", "lastAttempt",
                                                    "lastFailure"});
  CHECK(canary["origin"] == "https://api-origin.example");
  CHECK(canary["role"] == "canary");
  CHECK(canary["host"] == "api-origin.example");
  CHECK(canary["lastBackend"].is_null());
  CHECK(canary["lastAttempt"]["status"] == "not_paired");
  CHECK(canary["lastAttempt"]["httpStatus"] == 401);
  CHECK(canary["lastAttempt"]["latencyMs"] == 42);
  CHECK(canary["lastAttempt"]["backend"].is_null());  // straight to the origin: no header
  CHECK(canary["lastFailure"]["status"] == "not_paired");
  CHECK(canary["lastFailure"]["error"] == "HTTP 401: Hub not paired yet.");
  CHECK(canary["lastFailure"]["at"] == "2023-11-14T22:13:20.000Z");
  CHECK(primary["role"] == "primary");
  CHECK(primary["host"] == "app.example");
  CHECK(primary["lastAttempt"]["status"] == "ok");
  CHECK(primary["lastAttempt"]["backend"] == "vercel");
  CHECK(primary["lastAttempt"]["error"].is_null());
  CHECK(primary["lastFailure"].is_null());

  // Without a canary option the same origin reads as a previous one.
  options.platform_canary_base_url.clear();
  CHECK(sync_status_json(options, &store, tokens)["origins"][0]["role"] == "previous");
}
