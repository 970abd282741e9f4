#include "agent/platform_sync.hpp"

#include <cstdlib>
#include <exception>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "platform_client/hub_signer.hpp"

namespace dinodia::agent {

namespace pc = platform_client;

namespace {

constexpr std::int64_t kSkewToleranceS = 240;  // the platform allows 300 s; act before that
constexpr const char* kMissingConfig =
    "Platform sync requires platform_base_url, hub_agent_id (serial), and hub_agent_secret "
    "(bootstrap).";

// Re-pairing after a bad signature with a sane clock happens on the 2nd, 4th, 8th, ...
// consecutive failure: once soon, then ever more rarely (a wrong secret will not fix itself).
bool repair_due(int consecutive_bad_signatures) {
  return consecutive_bad_signatures >= 2 &&
         (consecutive_bad_signatures & (consecutive_bad_signatures - 1)) == 0;
}

}  // namespace

PlatformSync::PlatformSync(SyncSettings settings, StateStore& store,
                           LegacyTokenStateFile* legacy_file, ha_bridge::TokenRegistry& tokens,
                           pc::Transport& transport, std::vector<SyncContributor*> contributors,
                           const clock::Source& time_source)
    : settings_(std::move(settings)),
      store_(store),
      token_stores_(store, legacy_file, tokens),
      tokens_(tokens),
      api_(transport),
      contributors_(std::move(contributors)),
      clock_(time_source) {
  const PlatformOrigin primary =
      platform_origin(settings_.primary_base_url, settings_.token_state_endpoint, false);
  if (!settings_.canary_base_url.empty()) {
    PlatformOrigin canary =
        platform_origin(settings_.canary_base_url, settings_.token_state_endpoint, true);
    if (canary.origin != primary.origin) origins_.push_back(std::move(canary));
  }
  origins_.push_back(primary);
}

CycleOutcome PlatformSync::outcome_for(pc::Failure failure) {
  switch (failure) {
    case pc::Failure::none:
      return CycleOutcome::ok;
    case pc::Failure::unknown_serial:
      return CycleOutcome::unknown_hub;
    case pc::Failure::not_paired:
    case pc::Failure::bad_signature:
    case pc::Failure::other_unauthorized:
      return CycleOutcome::auth;
    default:
      return CycleOutcome::retry;
  }
}

CycleResult PlatformSync::run_cycle() {
  if (settings_.serial.empty() || settings_.primary_base_url.empty()) {
    log::warn("Platform sync failed", log::Fields().add("error", kMissingConfig));
    return {CycleOutcome::config, kMissingConfig};
  }
  OriginResult last;
  std::string canary_failure;  // the canary's failure class when this cycle fell back
  for (const PlatformOrigin& origin : origins_) {
    last_request_ = {};
    OriginResult result = run_against(origin);
    if (!result.attempted) continue;
    last = std::move(result);
    if (last.outcome == CycleOutcome::ok || last.outcome == CycleOutcome::local_error) {
      if (last_request_.made) log_cycle(origin, last_request_, last, canary_failure);
      break;
    }
    if (origin.canary) {
      // Whatever the canary answered (even a 401 or a broken canary URL), the same cycle goes,
      // re-signed with a fresh nonce and ts, to the primary origin.
      canary_failure = last.failure == pc::Failure::none ? std::string("config")
                                                         : std::string(pc::to_string(last.failure));
      log::warn("Platform canary origin failed; falling back to the primary origin",
                log::Fields()
                    .add("origin", origin.origin)
                    .add("failure", canary_failure)
                    .add("error", last.message));
      continue;
    }
    if (last_request_.made) log_cycle(origin, last_request_, last, canary_failure);
  }
  if (last.outcome == CycleOutcome::ok) return {CycleOutcome::ok, {}};
  if (last.outcome == CycleOutcome::unknown_hub) {
    log::warn("Platform does not know this hub; keeping the last accepted hashes",
              log::Fields().add("serial", settings_.serial).add("hashes", tokens_.synced_count()));
  }
  log::warn("Platform sync failed", log::Fields().add("error", last.message));
  return {last.outcome, last.message};
}

void PlatformSync::log_cycle(const PlatformOrigin& origin, const LastRequest& request,
                             const OriginResult& result, const std::string& canary_failure) {
  std::string outcome = "ok";
  if (result.failure != pc::Failure::none) {
    outcome = std::string(pc::to_string(result.failure));
  } else if (result.outcome == CycleOutcome::local_error) {
    outcome = "local_error";
  } else if (result.outcome != CycleOutcome::ok) {
    outcome = "retry";
  }
  log::Fields fields;
  fields.add("role", origin.role())
      .add("host", request.host)
      .add("outcome", outcome)
      .add("httpStatus", request.http_status)
      .add("latencyMs", request.latency_ms);
  // Only a Worker in front of the origin adds the header; straight to an origin there is none.
  if (!request.backend.empty()) fields.add("backend", request.backend);
  if (!canary_failure.empty()) fields.add("canaryFailure", canary_failure);
  log::info("Platform sync cycle", fields);
}

nlohmann::json PlatformSync::contributions() {
  nlohmann::json extra = nlohmann::json::object();
  for (auto* c : contributors_) {
    try {
      c->contribute(extra);
    } catch (const std::exception& e) {
      log::warn("Sync contributor failed", log::Fields().add("error", e.what()));
    }
  }
  return extra;
}

PlatformSync::OriginResult PlatformSync::run_against(const PlatformOrigin& base) {
  std::optional<Pairing> pairing;
  try {
    pairing = store_.pairing();
  } catch (const StateStoreError& e) {
    return {pc::Failure::none, CycleOutcome::local_error, e.what()};
  }
  if (pairing && !pairing->serial.empty() && pairing->serial != settings_.serial) {
    // hub_agent_id changed: the stored secret belongs to another serial.
    if (base.canary) return {pc::Failure::none, CycleOutcome::retry, {}, false};
    log::warn("Stored pairing is for another serial; pairing again",
              log::Fields().add("serial", settings_.serial));
    pairing.reset();
  }
  // Pairing happens against the primary only: a canary origin that is misconfigured (another
  // database, another bootstrap secret) must never decide the hub's sync secret. Without one the
  // canary is passed over until the primary has paired (docs/platform-protocol.md#origins).
  if (!pairing && base.canary) return {pc::Failure::none, CycleOutcome::retry, {}, false};
  // Pairs with `base` and reloads what was stored: nullopt once the hub is paired, otherwise
  // the result that ends this cycle.
  auto pair_and_reload = [&]() -> std::optional<OriginResult> {
    OriginResult r = pair(base);
    if (r.outcome != CycleOutcome::ok) return r;
    pairing = store_.pairing();
    if (!pairing) {
      return OriginResult{pc::Failure::none, CycleOutcome::local_error, "pairing was not stored"};
    }
    return std::nullopt;
  };
  bool paired_this_cycle = false;
  if (!pairing) {
    if (auto failed = pair_and_reload()) return *failed;
    paired_this_cycle = true;
  }

  const std::string& url = base.token_state_url;
  if (url.empty()) {
    return {pc::Failure::none, CycleOutcome::config,
            "platform_base_url / platform_token_state_endpoint do not form an http(s) URL"};
  }
  bool skew_retried = false, repaired = false, replay_retried = false;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const nlohmann::json extra = contributions();
    std::int64_t seen = 0;
    try {
      seen = store_.token_state().agent_seen_version;
    } catch (const StateStoreError& e) {
      return {pc::Failure::none, CycleOutcome::local_error, e.what()};
    }
    // Signed last, so every attempt carries a fresh nonce and ts.
    const pc::SignedFields signed_fields = sign(pairing->sync_secret);
    const pc::TokenStateRequest request =
        pc::PlatformApi::token_state_request(signed_fields, seen, extra);
    pc::TokenStateResult res = api_.token_state(url, request);
    record(base, "token-state", res.http, res.failure, res.message);

    switch (res.failure) {
      case pc::Failure::none:
        consecutive_bad_signatures_ = 0;
        return apply(request.sent, res);
      case pc::Failure::bad_signature:
        // From the canary: no clock offset learnt, no count towards re-pairing, no re-pair. The
        // primary, tried next in this cycle, is the one to tell a wrong clock or secret from a
        // misconfigured canary.
        if (base.canary) return {res.failure, CycleOutcome::auth, res.message};
        if (!skew_retried && learn_clock_offset(res.http)) {
          skew_retried = true;
          continue;
        }
        ++consecutive_bad_signatures_;
        if (!repaired && !paired_this_cycle && !settings_.bootstrap_secret.empty() &&
            repair_due(consecutive_bad_signatures_)) {
          log::warn("Platform keeps rejecting the hub signature with a sane clock; pairing again",
                    log::Fields().add("consecutiveFailures", consecutive_bad_signatures_));
          repaired = true;
          if (auto failed = pair_and_reload()) return *failed;
          continue;
        }
        return {res.failure, CycleOutcome::auth, res.message};
      case pc::Failure::not_paired:
        // From the canary this says nothing about the shared database: both origins should hold
        // the same pairing. The secret is kept and the primary tried next.
        if (base.canary) return {res.failure, CycleOutcome::auth, res.message};
        if (!repaired && !settings_.bootstrap_secret.empty()) {
          // The hub was re-provisioned: the platform holds no sync secret any more.
          log::warn("Platform says the hub is not paired; pairing again");
          repaired = true;
          try {
            // Database and the 0.4.17 file alike: a rollback must not sign with the dead secret.
            token_stores_.forget_sync_secret();
          } catch (const StateStoreError& e) {
            log::warn("Could not clear the sync secret", log::Fields().add("error", e.what()));
          }
          if (auto failed = pair_and_reload()) return *failed;
          continue;
        }
        return {res.failure, CycleOutcome::auth, res.message};
      case pc::Failure::replay:
        // Cannot happen with fresh random nonces; one re-signed retry, then back off.
        if (!replay_retried) {
          replay_retried = true;
          continue;
        }
        return {res.failure, CycleOutcome::retry, res.message};
      default:
        return {res.failure, outcome_for(res.failure), res.message};
    }
  }
  return {pc::Failure::none, CycleOutcome::retry, "too many attempts in one cycle"};
}

PlatformSync::OriginResult PlatformSync::pair(const PlatformOrigin& base) {
  if (settings_.bootstrap_secret.empty()) {
    return {pc::Failure::none, CycleOutcome::config, kMissingConfig};
  }
  const std::string& url = base.pair_url;
  if (url.empty()) {
    return {pc::Failure::none, CycleOutcome::config, "platform_base_url is not an http(s) URL"};
  }
  pc::PairResult pr;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const pc::SignedFields signed_fields = sign(settings_.bootstrap_secret);
    pr = api_.pair(url, signed_fields);
    record(base, "pair", pr.http, pr.failure, pr.message);
    if (attempt == 0 && pr.failure == pc::Failure::bad_signature && learn_clock_offset(pr.http)) {
      continue;
    }
    if (attempt == 0 && pr.failure == pc::Failure::replay) continue;
    break;
  }
  if (pr.failure != pc::Failure::none) {
    std::string message = "Pairing failed: " + pr.message;
    if (pr.failure == pc::Failure::bad_signature) {
      message += " (check hub_agent_secret and the hub clock)";
    } else if (pr.failure == pc::Failure::unknown_serial) {
      message += " (check hub_agent_id)";
    }
    return {pr.failure, outcome_for(pr.failure), message};
  }
  Pairing pairing{settings_.serial, pr.sync_secret,
                  clock::iso8601_from_millis(clock_.unix_millis()), base.origin};
  TokenState state;
  try {
    state = token_stores_.accept_pairing(pairing, pr.hub_token_hashes, pr.latest_version,
                                         pr.published_version);
  } catch (const StateStoreError& e) {
    log::error("Could not persist the pairing", log::Fields().add("error", e.what()));
    return {pc::Failure::none, CycleOutcome::local_error, e.what()};
  }
  log::Fields fields;
  fields.add("hashes", tokens_.synced_count()).add("agentSeenVersion", state.agent_seen_version);
  if (!pr.http.backend.empty()) fields.add("backend", pr.http.backend);
  log::info("Paired with platform", fields);
  return {};
}

PlatformSync::OriginResult PlatformSync::apply(const nlohmann::json& sent,
                                               const pc::TokenStateResult& res) {
  for (auto* c : contributors_) {
    try {
      c->on_response(sent, res.raw);
    } catch (const std::exception& e) {
      log::warn("Sync contributor failed", log::Fields().add("error", e.what()));
    }
  }
  if (res.hub_token_hashes.empty()) {
    // A lost or odd answer must never be read as "accept nothing"
    // (docs/platform-protocol.md#token-state).
    log::warn("Platform token-state returned zero hashes; ignoring");
    return {};
  }
  TokenState state;
  try {
    state = token_stores_.accept(res.hub_token_hashes, res.latest_version, res.published_version);
  } catch (const StateStoreError& e) {
    // Nothing applied, nothing acknowledged: the next cycle reports the old version again.
    log::error("Could not persist token state", log::Fields().add("error", e.what()));
    return {pc::Failure::none, CycleOutcome::local_error, e.what()};
  }
  for (auto* c : contributors_) {
    try {
      c->on_committed(sent);
    } catch (const std::exception& e) {
      log::warn("Sync contributor failed", log::Fields().add("error", e.what()));
    }
  }
  log::Fields fields;
  fields.add("hashes", state.hashes.size()).add("agentSeenVersion", state.agent_seen_version);
  if (!res.http.backend.empty()) fields.add("backend", res.http.backend);
  log::info("Platform sync updated tokens", fields);
  return {};
}

pc::SignedFields PlatformSync::sign(const std::string& secret) const {
  // As HubSigner::sign_now, on this sync's clock.
  return pc::HubSigner::sign_at(settings_.serial, secret,
                                clock_.unix_millis() / 1000 + clock_offset_s_.load());
}

bool PlatformSync::learn_clock_offset(const pc::HttpResult& http) {
  if (!http.date_unix) return false;
  const std::int64_t now = clock_.unix_millis() / 1000;
  const std::int64_t diff = *http.date_unix - (now + clock_offset_s_.load());
  if (std::llabs(diff) <= kSkewToleranceS) return false;
  const std::int64_t offset = *http.date_unix - now;
  clock_offset_s_.store(offset);
  log::warn("Hub clock differs from the platform clock; signing with the platform time",
            log::Fields().add("offsetSeconds", offset));
  return true;
}

void PlatformSync::record(const PlatformOrigin& base, const char* operation,
                          const pc::HttpResult& http, pc::Failure failure,
                          const std::string& message) {
  SyncAttempt a;
  a.at_ms = clock_.unix_millis();
  a.origin = base.origin;
  a.operation = operation;
  a.backend = http.backend;
  a.status = failure == pc::Failure::none ? "ok" : std::string(pc::to_string(failure));
  a.http_status = http.status;
  a.latency_ms = http.latency.count();
  a.error = message;
  last_request_.made = true;
  last_request_.host =
      std::string_view(operation) == "pair" ? base.pair_host : base.token_state_host;
  last_request_.http_status = http.status;
  last_request_.latency_ms = a.latency_ms;
  last_request_.backend = http.backend;
  try {
    store_.record_attempt(a);
  } catch (const StateStoreError& e) {
    log::warn("Could not record the sync attempt", log::Fields().add("error", e.what()));
  }
  if (!http.backend.empty() || http.status != 0) {
    log::debug("Platform answered", log::Fields()
                                        .add("operation", operation)
                                        .add("origin", a.origin)
                                        .add("status", http.status)
                                        .add("backend", http.backend)
                                        .add("latencyMs", a.latency_ms));
  }
}

}  // namespace dinodia::agent
