// agent/PlatformSync: one cycle's decisions (persist before acknowledging, recovery, canary
// fallback; docs/platform-protocol.md#rotation, #errors, #origins) with the platform's answers
// scripted at the Transport seam. Assertions are on what the cycle did to the state store and the
// token registry, and on the requests it sent — never on the script.
#include <catch2/catch.hpp>

#include <deque>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/platform_sync.hpp"
#include "agent/state_store.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "ha_bridge/token_registry.hpp"
#include "platform_client/hub_signer.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::agent;
using dinodia::platform_client::HttpResult;
using Json = nlohmann::json;

namespace {
const std::string kH1(64, 'a');
const std::string kH2(64, 'b');
constexpr const char* kPrimary = "https://primary.example";
constexpr const char* kCanary = "https://canary.example";

struct Sent {
  std::string url;
  Json body;
};

class ScriptedTransport : public dinodia::platform_client::Transport {
 public:
  std::deque<HttpResult> answers;
  std::vector<Sent> sent;
  HttpResult post_json(const std::string& url, const std::string& body) override {
    sent.push_back({url, Json::parse(body)});
    if (answers.empty()) return HttpResult{0, "", false, "", std::nullopt, "connect", {}};
    HttpResult r = answers.front();
    answers.pop_front();
    return r;
  }
  HttpResult get(const std::string&) override { return {}; }
};

HttpResult answer(int status, Json body, std::string backend = "",
                  std::optional<std::int64_t> date = std::nullopt) {
  HttpResult r;
  r.status = status;
  r.body = body.dump();
  r.backend = std::move(backend);
  r.date_unix = date;
  return r;
}
HttpResult error(int status, const std::string& message,
                 std::optional<std::int64_t> date = std::nullopt) {
  return answer(status, {{"ok", false}, {"errorCode", "X"}, {"error", message}}, "", date);
}
Json state_body(std::vector<std::string> hashes, int latest, int published) {
  return {{"ok", true},
          {"hubTokenHashes", hashes},
          {"latestVersion", latest},
          {"publishedVersion", published}};
}
Json pair_body(std::vector<std::string> hashes, int latest) {
  Json b = state_body(hashes, latest, 0);
  b["syncSecret"] = "sync-secret-from-platform";
  return b;
}

struct Fixture {
  dinodia::testing::TempDir dir;
  StateStore store{StateStore::default_path(dir.path())};
  dinodia::ha_bridge::TokenRegistry tokens;
  ScriptedTransport transport;
  SyncSettings settings{"HUB-1", "boot-secret", kPrimary, "", ""};
  PlatformSync make() { return PlatformSync(settings, store, nullptr, tokens, transport); }
  void paired(std::vector<std::string> hashes, int version) {
    store.apply_pair({"HUB-1", "old-secret", "t", kPrimary}, hashes, version, 0);
    tokens.set_synced(store.token_state().hashes);
  }
};
}  // namespace

TEST_CASE("pair - then token-state in the same cycle - version acknowledged only when stored",
          "[sync]") {
  Fixture f;
  f.transport.answers = {answer(200, pair_body({kH1}, 1)), answer(200, state_body({kH1}, 1, 0))};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 2);
  CHECK(f.transport.sent[0].url == std::string(kPrimary) + "/api/hub-agent/pair");
  CHECK(f.transport.sent[1].body["agentSeenVersion"] == 1);  // from the stored pair answer
  CHECK(f.transport.sent[1].body["sig"] == dinodia::platform_client::HubSigner::signature(
                                               "HUB-1", f.transport.sent[1].body["ts"],
                                               f.transport.sent[1].body["nonce"].get<std::string>(),
                                               "sync-secret-from-platform"));
  CHECK(f.store.pairing()->sync_secret == "sync-secret-from-platform");
  CHECK(f.tokens.synced_count() == 1);
}

TEST_CASE("zero hashes: ignored - old set and version kept", "[sync]") {
  Fixture f;
  f.paired({kH1}, 3);
  f.transport.answers = {answer(200, state_body({}, 9, 9))};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  CHECK(f.store.token_state().agent_seen_version == 3);
  CHECK(f.store.token_state().hashes == std::vector<std::string>{kH1});
  CHECK(f.tokens.synced_hashes() == std::vector<std::string>{kH1});
}

TEST_CASE("store cannot persist: nothing applied in memory - nothing acknowledged", "[sync]") {
  Fixture f;
  f.paired({kH1}, 3);
  StateStore read_only(f.store.path(), /*read_only=*/true);
  f.transport.answers = {answer(200, state_body({kH1, kH2}, 4, 3))};
  PlatformSync sync(f.settings, read_only, nullptr, f.tokens, f.transport);
  CHECK(sync.run_cycle().outcome == CycleOutcome::local_error);
  CHECK(f.tokens.synced_count() == 1);  // the new hash was NOT put in force
  CHECK(f.store.token_state().agent_seen_version == 3);
  // The next cycle (store writable again) reports the old version, not 4.
  f.transport.answers = {answer(200, state_body({kH1, kH2}, 4, 3))};
  auto sync2 = f.make();
  CHECK(sync2.run_cycle().outcome == CycleOutcome::ok);
  CHECK(f.transport.sent.back().body["agentSeenVersion"] == 3);
  CHECK(f.store.token_state().agent_seen_version == 4);
}

TEST_CASE("Hub not paired yet: re-pair once in the same cycle - every request freshly signed",
          "[sync]") {
  Fixture f;
  f.paired({kH1}, 1);
  f.transport.answers = {error(401, "Hub not paired yet."), answer(200, pair_body({kH1}, 1)),
                         answer(200, state_body({kH1, kH2}, 2, 1))};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 3);
  CHECK(f.transport.sent[1].url == std::string(kPrimary) + "/api/hub-agent/pair");
  CHECK(f.transport.sent[0].body["nonce"] != f.transport.sent[2].body["nonce"]);
  CHECK(f.store.pairing()->sync_secret == "sync-secret-from-platform");
  CHECK(f.store.token_state().agent_seen_version == 2);

  // Pairing fails too: the cycle fails, nothing lost.
  f.transport.answers = {error(401, "Hub not paired yet."), error(401, "Invalid hub signature.")};
  CHECK(sync.run_cycle().outcome == CycleOutcome::auth);
  CHECK(f.store.token_state().hashes.size() == 2);
  CHECK(f.tokens.synced_count() == 2);
}

TEST_CASE("bad signature with a skewed Date: offset learnt - retried with corrected ts", "[sync]") {
  Fixture f;
  f.paired({kH1}, 1);
  const std::int64_t platform_now = dinodia::clock::unix_seconds() + 900;
  f.transport.answers = {error(401, "Invalid hub signature.", platform_now),
                         answer(200, state_body({kH1}, 1, 1))};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 2);
  CHECK(std::llabs(f.transport.sent[1].body["ts"].get<std::int64_t>() - platform_now) <= 2);
  CHECK(std::llabs(sync.clock_offset_s() - 900) <= 2);
  // Sane clock: no retry on the first bad signature, re-pair on the second consecutive one.
  f.transport.answers = {error(401, "Invalid hub signature.", platform_now)};
  CHECK(sync.run_cycle().outcome == CycleOutcome::auth);
  f.transport.answers = {error(401, "Invalid hub signature.", platform_now),
                         answer(200, pair_body({kH1}, 1)), answer(200, state_body({kH1}, 1, 1))};
  const std::size_t before = f.transport.sent.size();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == before + 3);
  CHECK(f.transport.sent[before + 1].url == std::string(kPrimary) + "/api/hub-agent/pair");
}

TEST_CASE("404 Unknown hub serial: last hashes kept - unknown_hub outcome", "[sync]") {
  Fixture f;
  f.paired({kH1}, 1);
  f.transport.answers = {error(404, "Unknown hub serial.")};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::unknown_hub);
  CHECK(f.tokens.synced_count() == 1);
  CHECK(f.store.pairing().has_value());
}

TEST_CASE("canary failure falls back to the primary in the same cycle - re-signed", "[sync]") {
  Fixture f;
  f.settings.canary_base_url = kCanary;
  f.paired({kH1}, 1);
  f.transport.answers = {error(500, "boom"), answer(200, state_body({kH1, kH2}, 2, 1), "vercel")};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 2);
  CHECK(f.transport.sent[0].url.rfind(kCanary, 0) == 0);
  CHECK(f.transport.sent[1].url.rfind(kPrimary, 0) == 0);
  CHECK(f.transport.sent[0].body["nonce"] != f.transport.sent[1].body["nonce"]);
  bool canary_failure = false, primary_success = false;
  for (const auto& c : f.store.origin_counters()) {
    if (c.origin == kCanary) canary_failure = c.failures == 1 && c.successes == 0;
    if (c.origin == kPrimary) primary_success = c.successes == 1 && c.last_backend == "vercel";
  }
  CHECK(canary_failure);
  CHECK(primary_success);
  // Transport failure on the canary too.
  f.transport.answers = {HttpResult{0, "", false, "", std::nullopt, "timeout", {}},
                         answer(200, state_body({kH1, kH2}, 2, 2), "vercel")};
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  // Both down: the cycle fails as a retryable error and the hashes stay.
  f.transport.answers = {error(502, "bad gateway"), error(503, "unavailable")};
  CHECK(sync.run_cycle().outcome == CycleOutcome::retry);
  CHECK(f.tokens.synced_count() == 2);
}

TEST_CASE("canary failure of every class: primary in the same cycle - secret kept - no re-pair",
          "[sync]") {
  // A misconfigured canary (docs/platform-protocol.md#origins) must never cost the hub its
  // pairing: whatever it answers, the stored secret stays, nothing is paired, no clock offset is
  // learnt from it, and the primary - tried next, freshly signed - accepts the same secret.
  HttpResult framework_500;
  framework_500.status = 500;
  framework_500.body = "Internal Server Error";
  HttpResult not_json = answer(200, Json());
  not_json.body = "<html>definitely not json";
  const std::int64_t far_off = dinodia::clock::unix_seconds() + 900;
  struct Case {
    const char* name;
    HttpResult canary_answer;
    const char* failure_class;
  };
  const std::vector<Case> cases{
      {"5xx envelope", error(503, "Service unavailable"), "server_error"},
      {"framework 500", framework_500, "server_error"},
      {"timeout", HttpResult{0, "", false, "", std::nullopt, "timeout", {}}, "timeout"},
      {"connection reset", HttpResult{0, "", false, "", std::nullopt, "read", {}}, "transport"},
      {"401 not paired", error(401, "Hub not paired yet."), "not_paired"},
      {"401 bad signature, skewed Date", error(401, "Invalid hub signature.", far_off),
       "bad_signature"},
      {"404 unknown serial", error(404, "Unknown hub serial."), "unknown_serial"},
      {"malformed body", not_json, "malformed_response"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Fixture f;
    f.settings.canary_base_url = kCanary;
    f.paired({kH1}, 1);
    auto sync = f.make();
    // Four cycles: past the 2nd and 4th consecutive failure, where a primary's bad signature
    // would re-pair.
    for (int cycle = 0; cycle < 4; ++cycle) {
      f.transport.answers = {c.canary_answer, answer(200, state_body({kH1, kH2}, 2, 1), "vercel")};
      CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
    }
    REQUIRE(f.transport.sent.size() == 8);
    for (std::size_t i = 0; i < f.transport.sent.size(); ++i) {
      const Sent& sent = f.transport.sent[i];
      CHECK(sent.url.find("/api/hub-agent/pair") == std::string::npos);
      CHECK(sent.url.rfind(i % 2 == 0 ? kCanary : kPrimary, 0) == 0);
      // Every request, canary and primary alike, is signed with the one stored secret.
      CHECK(sent.body["sig"] ==
            dinodia::platform_client::HubSigner::signature(
                "HUB-1", sent.body["ts"], sent.body["nonce"].get<std::string>(), "old-secret"));
      if (i % 2 == 1) CHECK(sent.body["nonce"] != f.transport.sent[i - 1].body["nonce"]);
    }
    REQUIRE(f.store.pairing().has_value());
    CHECK(f.store.pairing()->sync_secret == "old-secret");
    CHECK(sync.clock_offset_s() == 0);
    CHECK(f.tokens.synced_count() == 2);
    bool canary_seen = false;
    for (const auto& o : f.store.origin_counters()) {
      if (o.origin != kCanary) continue;
      canary_seen = true;
      CHECK(o.failures == 4);
      REQUIRE(o.last_failed_attempt.has_value());
      CHECK(o.last_failed_attempt->status == c.failure_class);
      CHECK(o.last_failed_attempt->operation == "token-state");
    }
    CHECK(canary_seen);
  }
}

TEST_CASE("no pairing stored: the canary waits - the primary pairs - then the canary is used",
          "[sync]") {
  Fixture f;
  f.settings.canary_base_url = kCanary;
  f.transport.answers = {answer(200, pair_body({kH1}, 1)), answer(200, state_body({kH1}, 1, 0)),
                         answer(200, state_body({kH1}, 1, 1), "aws")};
  auto sync = f.make();
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 2);
  CHECK(f.transport.sent[0].url == std::string(kPrimary) + "/api/hub-agent/pair");
  CHECK(f.transport.sent[1].url.rfind(kPrimary, 0) == 0);
  CHECK(f.store.pairing()->origin == kPrimary);
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 3);
  CHECK(f.transport.sent[2].url.rfind(kCanary, 0) == 0);
  // Both fail: the primary's not-paired answer still recovers (against the primary).
  f.transport.answers = {error(401, "Hub not paired yet."), error(401, "Hub not paired yet."),
                         answer(200, pair_body({kH1}, 1)), answer(200, state_body({kH1}, 1, 1))};
  CHECK(sync.run_cycle().outcome == CycleOutcome::ok);
  REQUIRE(f.transport.sent.size() == 7);
  CHECK(f.transport.sent[3].url.rfind(kCanary, 0) == 0);
  CHECK(f.transport.sent[4].url.rfind(kPrimary, 0) == 0);
  CHECK(f.transport.sent[5].url == std::string(kPrimary) + "/api/hub-agent/pair");
}

TEST_CASE("missing bootstrap secret without a sync secret: the legacy message", "[sync]") {
  Fixture f;
  f.settings.bootstrap_secret = "";
  auto sync = f.make();
  auto r = sync.run_cycle();
  CHECK(r.outcome == CycleOutcome::config);
  CHECK(r.message ==
        "Platform sync requires platform_base_url, hub_agent_id (serial), and hub_agent_secret "
        "(bootstrap).");
  CHECK(f.transport.sent.empty());
}

TEST_CASE("no nonce is ever sent twice across thousands of requests, retries and restarts",
          "[sync]") {
  // The platform rejects a repeated (serial, nonce) as a replay; the integration tests cover a
  // few hundred real requests, this covers thousands of cycles with every recovery path.
  Fixture f;
  f.paired({kH1}, 1);
  std::set<std::string> nonces;
  std::size_t requests = 0;
  for (int restart = 0; restart < 30; ++restart) {
    auto sync = f.make();  // a new engine over the same database: a process restart
    for (int cycle = 0; cycle < 100; ++cycle) {
      switch ((restart * 100 + cycle) % 4) {
        case 0:
          f.transport.answers = {answer(200, state_body({kH1}, 1, 1))};
          break;
        case 1:
          f.transport.answers = {error(500, "boom")};
          break;
        case 2:
          f.transport.answers = {};
          break;  // transport failure
        default:
          f.transport.answers = {error(401, "Hub not paired yet."),
                                 answer(200, pair_body({kH1}, 1)),
                                 answer(200, state_body({kH1}, 1, 1))};
      }
      (void)sync.run_cycle();
    }
    for (; requests < f.transport.sent.size(); ++requests) {
      const auto& body = f.transport.sent[requests].body;
      REQUIRE(body["nonce"].is_string());
      CHECK(nonces.insert(body["nonce"].get<std::string>()).second);
    }
  }
  CHECK(requests >= 3000);
  CHECK(nonces.size() == requests);
}
