#pragma once
// One platform sync cycle (docs/platform-protocol.md#pair, #token-state, #rotation): pair when no
// sync secret is held, POST token-state with agentSeenVersion, apply the answer transactionally,
// and recover by itself from the platform's known failure answers. With a canary origin configured
// the cycle goes there first and falls back, re-signed, to the primary origin. The canary is only
// ever trusted with a success: pairing, and every recovery that changes the sync secret or the
// clock offset, happen against the primary alone (docs/platform-protocol.md#origins).
//
// Blocking, on the sync thread only (one cycle at a time): each platform request waits for its
// answer. Status readers use the StateStore.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/legacy_token_state.hpp"
#include "agent/platform_origin.hpp"
#include "agent/state_store.hpp"
#include "agent/sync_contributor.hpp"
#include "agent/token_stores.hpp"
#include "common/clock.hpp"
#include "ha_bridge/token_registry.hpp"
#include "platform_client/platform_api.hpp"
#include "platform_client/transport.hpp"

namespace dinodia::agent {

struct SyncSettings {
  std::string serial;            // hub_agent_id, trimmed
  std::string bootstrap_secret;  // hub_agent_secret (never logged)
  std::string primary_base_url;  // platform_base_url
  std::string canary_base_url;   // platform_canary_base_url, "" = none
  std::string token_state_endpoint;
};

// What the scheduler needs to pick the next delay.
enum class CycleOutcome {
  ok,           // applied (or a zero-hash answer ignored on purpose)
  retry,        // transient: network, timeout, 5xx, malformed, replay → exponential back-off
  unknown_hub,  // 404 Unknown hub serial. → keep last hashes, back off
  auth,         // 401 that recovery could not fix → back off
  config,       // options missing → next regular interval
  local_error,  // the state store could not persist → back off
};

struct CycleResult {
  CycleOutcome outcome = CycleOutcome::ok;
  std::string message;  // for logs; never a secret
};

class PlatformSync {
 public:
  // `time_source` is where the cycle reads the time (the signed `ts`, the clock offset, the
  // history's timestamps): the system clock in the agent, a simulated one in bench/fleet_sim.
  PlatformSync(SyncSettings settings, StateStore& store, LegacyTokenStateFile* legacy_file,
               ha_bridge::TokenRegistry& tokens, platform_client::Transport& transport,
               std::vector<SyncContributor*> contributors = {},
               const clock::Source& time_source = clock::system_source());

  CycleResult run_cycle();

  // Seconds to add to the hub clock when signing, learned from a platform Date header.
  std::int64_t clock_offset_s() const { return clock_offset_s_.load(); }

 private:
  struct OriginResult {
    platform_client::Failure failure = platform_client::Failure::none;
    CycleOutcome outcome = CycleOutcome::ok;
    std::string message;
    // false: the canary was passed over, as no sync secret is stored (pairing is the primary's).
    bool attempted = true;
  };
  // The last request of the origin being tried, for the cycle's log line.
  struct LastRequest {
    bool made = false;
    std::string host;  // host[:port] the request went to
    int http_status = 0;
    std::int64_t latency_ms = 0;
    std::string backend;  // x-dinodia-api-backend, "" when absent
  };
  OriginResult run_against(const PlatformOrigin& origin);
  // Pairs with the bootstrap secret; stores the pairing and any hashes in one transaction.
  OriginResult pair(const PlatformOrigin& origin);
  OriginResult apply(const nlohmann::json& sent, const platform_client::TokenStateResult& result);
  // Asks every contributor for its keys of the next token-state body.
  nlohmann::json contributions();
  // True (and the offset updated + logged) if a bad_signature answer carries a Date header more
  // than 240 s away from the hub's (corrected) clock.
  bool learn_clock_offset(const platform_client::HttpResult& http);
  // Signs for `secret` at the hub's time plus the learnt offset, with a fresh nonce.
  platform_client::SignedFields sign(const std::string& secret) const;
  void record(const PlatformOrigin& origin, const char* operation,
              const platform_client::HttpResult& http, platform_client::Failure failure,
              const std::string& message);
  static CycleOutcome outcome_for(platform_client::Failure failure);
  // The one line per cycle saying where the sync went (docs/platform-protocol.md#origins).
  static void log_cycle(const PlatformOrigin& origin, const LastRequest& request,
                        const OriginResult& result, const std::string& canary_failure);

  SyncSettings settings_;
  // Canary first (when set and on another origin), then the primary; parsed once.
  std::vector<PlatformOrigin> origins_;
  StateStore& store_;
  TokenStores token_stores_;
  ha_bridge::TokenRegistry& tokens_;
  platform_client::PlatformApi api_;
  std::vector<SyncContributor*> contributors_;
  const clock::Source& clock_;
  std::atomic<std::int64_t> clock_offset_s_{0};
  int consecutive_bad_signatures_ = 0;
  LastRequest last_request_;  // of the origin run_against() is trying
};

}  // namespace dinodia::agent
