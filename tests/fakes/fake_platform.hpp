#pragma once
// Stand-in for the Dinodia platform's hub-agent routes (docs/platform-protocol.md): pairing,
// token-state, HMAC + replay table, the PENDING/ACTIVE/GRACE/REVOKED token lifecycle. One
// in-memory state is shared by every listener, as Vercel and AWS share one database.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"

namespace dinodia::fake_platform {

enum class TokenStatus { pending, active, grace, revoked };

struct Token {
  std::int64_t version = 0;
  TokenStatus status = TokenStatus::pending;
  std::string plaintext;  // 64 hex
  std::string hash;       // sha256 hex of plaintext
  std::optional<std::int64_t> published_at_ms;
  std::optional<std::int64_t> grace_until_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t created_seq = 0;  // tie-breaker for "newest"
};

struct Hub {
  std::string serial;
  std::string bootstrap_secret;
  std::optional<std::string> sync_secret;
  bool platform_sync_enabled = true;
  int platform_sync_interval_minutes = 2;
  std::int64_t published_version = 0;
  std::int64_t last_acked_version = 0;
  std::optional<std::int64_t> last_seen_ms;
  std::vector<Token> tokens;
  bool linked_home = false;
  std::optional<std::string> last_reported_lan_base_url;
  std::optional<nlohmann::json> last_reported_ha_areas;
  std::optional<std::int64_t> last_reported_ha_areas_at_ms;
  std::optional<std::int64_t> heating_reset_requested_ms;
  std::optional<std::int64_t> heating_reset_completed_ms;
};

struct Response {
  int status = 200;
  std::string body;  // JSON text (or garbage for the malformed failure mode)
  bool raw = false;  // true: not an envelope (framework 500 / garbage)
};

struct Settings {
  std::int64_t clock_offset_s = 0;
  std::int64_t rotate_seconds = 3600;
  std::int64_t grace_seconds = 1200;
  std::int64_t max_skew_s = 300;
  // The platform's time (before clock_offset_s); nullptr = the system clock. bench/fleet_sim
  // runs this platform in-process on its simulated clock.
  const clock::Source* clock = nullptr;
  // Keep the request counts, recent requests and last bodies that state() reports (bench/fleet_sim,
  // which reads none of them, turns this off).
  bool record_requests = true;
};

class Platform {
 public:
  explicit Platform(Settings settings) : settings_(settings) {}

  // The hub-agent routes. `listener` is 1 or 2 (for per-listener statistics).
  Response pair(const std::string& body, int listener);
  Response token_state(const std::string& body, int listener);

  // Control surface.
  Response provision(const nlohmann::json& request);
  Response published_token(const std::string& serial);
  nlohmann::json state(const std::string& serial);
  Response remove_hub(const std::string& serial);
  Response clear_sync_secret(const std::string& serial);
  // As if this platform's database had paired the hub with another secret (a canary origin on a
  // database of its own): token-state signed with any other secret is `Invalid hub signature.`
  Response set_sync_secret(const std::string& serial, const std::string& sync_secret);
  // Every request that reached a hub-agent route, answered by the routes or by an injected
  // failure (requestCounts only counts the former); state() reports them as "arrivals".
  void note_arrival(const std::string& route, int listener);
  Response configure(const nlohmann::json& request);
  Response request_heating_reset(const std::string& serial);

  std::int64_t now_ms() const;

  // For in-process users (bench/fleet_sim): the plaintexts a client of the hub may hold now, the
  // published (ACTIVE) token and any GRACE token whose grace has not ended, which the hub must
  // accept (platform-contract A3.6); and the replay counters that state() reports.
  std::vector<std::string> tokens_clients_may_hold(const std::string& serial);
  std::int64_t duplicate_nonce_attempts();
  std::int64_t replays_rejected();
  std::size_t nonces_seen();
  std::int64_t publications();  // tokens published to clients (acknowledged PENDING → ACTIVE)

 private:
  struct Signed {
    std::string serial_raw;  // as sent (HMAC + replay key)
    std::string serial;      // trimmed (lookup)
    std::string ts_text;     // canonical decimal rendering
    double ts = 0;
    std::string nonce;
    std::string sig;
  };
  // Steps 1-2 of both routes: parse + required fields. Returns an error response or fills out.
  std::optional<Response> parse_signed(const std::string& body, nlohmann::json& parsed,
                                       Signed& out);
  std::optional<Response> verify(const Signed& s, const std::string& secret, std::int64_t now);
  void record_request(const std::string& route, const std::string& body, int listener);
  void cleanup(Hub& hub);
  void create_token(Hub& hub, std::int64_t version, std::int64_t now);
  nlohmann::json accepted_hashes(const Hub& hub, std::int64_t now) const;
  std::int64_t latest_version(const Hub& hub) const;
  void record_telemetry(Hub& hub, const nlohmann::json& body, std::int64_t now);

  std::mutex mutex_;
  Settings settings_;
  std::map<std::string, Hub> hubs_;
  std::map<std::pair<std::string, std::string>, std::int64_t> nonce_table_;  // -> createdAt ms
  // The same rows by createdAt, so that expiring them does not walk the whole table.
  std::multimap<std::int64_t, std::pair<std::string, std::string>> nonce_expiry_;
  std::vector<std::string> all_nonces_;
  std::set<std::string> all_nonce_set_;
  std::int64_t duplicate_nonce_attempts_ = 0;
  std::int64_t replays_rejected_ = 0;
  std::int64_t publications_ = 0;
  std::int64_t seq_ = 0;
  std::map<std::string, std::int64_t> request_counts_;  // "route@listener" -> count
  std::map<std::string, std::int64_t> arrivals_;        // the same, injected failures included
  std::vector<nlohmann::json> recent_requests_;         // last 50
  std::map<std::string, std::string> last_body_by_route_;
  nlohmann::json telemetry_ = nlohmann::json::object();  // per-serial validator results
};

Response envelope(int status, const std::string& message);

}  // namespace dinodia::fake_platform
