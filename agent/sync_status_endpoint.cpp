#include "agent/sync_status_endpoint.hpp"

#include <optional>
#include <utility>

#include "agent/platform_origin.hpp"
#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

namespace dinodia::agent {
namespace {

// application/x-www-form-urlencoded decoding, as URLSearchParams does.
std::string form_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && text::hex_digit_value(s[i + 1]) >= 0 &&
               text::hex_digit_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(text::hex_digit_value(s[i + 1]) * 16 +
                                      text::hex_digit_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    std::string key = form_decode(pair.substr(0, eq));
    if (key == name) {
      return eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
    }
  }
  return {};
}

nlohmann::ordered_json iso_or_null(std::int64_t ms) {
  return ms > 0 ? nlohmann::ordered_json(clock::iso8601_from_millis(ms))
                : nlohmann::ordered_json(nullptr);
}

// One attempt of an origin's history: `status` is "ok" or the failure class; `backend` is null
// when the answer carried no x-dinodia-api-backend (a request straight to an origin).
nlohmann::ordered_json attempt_json(const std::optional<SyncAttempt>& a) {
  if (!a) return nullptr;
  nlohmann::ordered_json j;
  j["at"] = clock::iso8601_from_millis(a->at_ms);
  j["operation"] = a->operation;
  j["status"] = a->status;
  j["httpStatus"] = a->http_status;
  j["latencyMs"] = a->latency_ms;
  j["backend"] =
      a->backend.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(a->backend);
  j["error"] =
      a->error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(a->error);
  return j;
}

}  // namespace

std::string presented_sync_status_token(const ha_bridge::LocalRequest& request) {
  std::string_view bearer = text::bearer_token(request.header("authorization"));
  if (!bearer.empty()) return std::string(bearer);
  std::string_view header = text::trim(request.header("x-dinodia-sync-status-token"));
  if (!header.empty()) return std::string(header);
  return std::string(text::trim(query_param(request.query, "token")));
}

nlohmann::ordered_json sync_status_json(const Options& options, const StateStore* store,
                                        const ha_bridge::TokenRegistry& tokens,
                                        const nlohmann::json* electric_usage) {
  nlohmann::ordered_json j;
  j["ok"] = true;
  j["platformSyncEnabled"] = options.platform_sync_enabled;
  std::int64_t seen = 0;
  bool has_secret = false;
  nlohmann::ordered_json origins = nlohmann::ordered_json::array();
  nlohmann::ordered_json last_sync = nullptr;
  std::string store_error;
  if (store) {
    try {
      seen = store->token_state().agent_seen_version;
      has_secret = store->pairing().has_value();
      for (const auto& c : store->origin_counters()) {
        nlohmann::ordered_json o;
        o["origin"] = c.origin;
        o["role"] =
            origin_role(c.origin, options.platform_base_url, options.platform_canary_base_url);
        o["successes"] = c.successes;
        o["failures"] = c.failures;
        o["lastError"] = c.last_error.empty() ? nlohmann::ordered_json(nullptr)
                                              : nlohmann::ordered_json(c.last_error);
        o["lastBackend"] = c.last_backend.empty() ? nlohmann::ordered_json(nullptr)
                                                  : nlohmann::ordered_json(c.last_backend);
        o["lastSuccessAt"] = iso_or_null(c.last_success_ms);
        o["lastFailureAt"] = iso_or_null(c.last_failure_ms);
        // Added after the fields above, which stay as they were
        // (docs/compatibility.md#sync-status): where this origin's requests went and how its last
        // attempt and last failure ended, whether or not a Worker added x-dinodia-api-backend
        // (docs/platform-protocol.md#origins).
        o["host"] = host_of(c.origin);
        o["lastAttempt"] = attempt_json(c.last_attempt);
        o["lastFailure"] = attempt_json(c.last_failed_attempt);
        origins.push_back(std::move(o));
      }
      auto recent = store->recent_attempts(1);
      if (!recent.empty()) {
        const auto& a = recent.front();
        last_sync = {{"at", clock::iso8601_from_millis(a.at_ms)},
                     {"origin", a.origin},
                     {"operation", a.operation},
                     {"status", a.status},
                     {"httpStatus", a.http_status},
                     {"backend", a.backend},
                     {"latencyMs", a.latency_ms}};
      }
    } catch (const StateStoreError& e) {
      store_error = e.what();
    }
  }
  j["agentSeenVersion"] = seen;
  j["hashes"] = tokens.synced_count();
  j["hasSyncSecret"] = has_secret;
  // 0.4.17's key order; `enabled` reflects the option (0.4.17 always said true,
  // docs/compatibility.md#w30).
  auto field = [&](const char* key, const nlohmann::json& fallback) {
    return electric_usage && electric_usage->contains(key) ? (*electric_usage)[key] : fallback;
  };
  j["electricUsage"] = {{"enabled", field("enabled", options.electric_usage_tracking_enabled)},
                        {"trackedEntities", field("trackedEntities", 0)},
                        {"pendingSegments", field("pendingSegments", 0)},
                        {"dirtyEntities", field("dirtyEntities", 0)},
                        {"lastResetAt", field("lastResetAt", nullptr)}};
  j["origins"] = std::move(origins);
  j["lastAttempt"] = std::move(last_sync);
  if (!store_error.empty()) j["stateError"] = store_error;
  return j;
}

nlohmann::ordered_json kiosk_relief_status_json(const Options& options,
                                                ha_bridge::LanBridge& bridge) {
  const ha_bridge::BridgeStats stats = bridge.stats();
  nlohmann::ordered_json j;
  j["enabled"] = options.kiosk_relief;
  j["windowMs"] = options.kiosk_relief_window_ms;
  j["eventStreamUp"] = ha_bridge::ReliefSignals::stream_is_up(bridge.relief_signals().now().stream);
  j["joined"] = stats.relief_joined;
  j["servedHeld"] = stats.relief_served_held;
  j["upstream"] = stats.relief_upstream;
  j["heldBytes"] = stats.relief_held_bytes;
  j["wsSessionsWithoutLogin"] = stats.relief_ws_sessions_without_login;
  return j;
}

ha_bridge::LocalRoute sync_status_route(const std::string& configured_token,
                                        std::function<nlohmann::ordered_json()> status) {
  std::string token(text::trim(configured_token));
  const bool available = static_cast<bool>(status);
  // The token is checked on the head, before any body is read; a refusal looks like a missing
  // route (docs/compatibility.md#sync-status).
  ha_bridge::LocalAdmission admit =
      [token = std::move(token), available](
          const ha_bridge::LocalRequest& request) -> std::optional<ha_bridge::LocalResponse> {
    const std::string presented = presented_sync_status_token(request);
    if (!token.empty() && !presented.empty() && crypto::constant_time_equal(presented, token) &&
        available) {
      return std::nullopt;
    }
    ha_bridge::LocalResponse response;
    response.status = 404;
    response.body = R"({"error":"Not found."})";
    return response;
  };
  return {"GET", "/_dinodia/sync-status",
          [status = std::move(status)](const ha_bridge::LocalRequest&,
                                       const ha_bridge::Responder& respond) {
            ha_bridge::LocalResponse response;
            response.body = status().dump();
            response.headers.emplace_back("cache-control", "no-store");
            respond(std::move(response));
          },
          std::size_t{64} * 1024, std::move(admit)};
}

}  // namespace dinodia::agent
