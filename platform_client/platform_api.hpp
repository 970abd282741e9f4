#pragma once
// The two hub-agent routes of the platform (docs/platform-protocol.md#pair, #token-state): URL
// building exactly as the legacy agent, request bodies in legacy key order, strict validation of
// 2xx bodies and a classification of every failure the platform can answer.
//
// Blocking: every call waits for its answer (the Transport bounds each request). The agent calls
// this from its own sync thread, so nothing here shares the bridge's event loop.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "platform_client/hub_signer.hpp"
#include "platform_client/transport.hpp"
#include "platform_client/url.hpp"

namespace dinodia::platform_client {

enum class Failure {
  none,
  transport,
  timeout,
  not_paired,          // 401 Hub not paired yet.
  bad_signature,       // 401 Invalid hub signature. (also a skewed clock)
  replay,              // 401 Replay detected
  other_unauthorized,  // any other 401 / 403
  unknown_serial,      // 404 Unknown hub serial.
  client_error,        // other 4xx
  server_error,        // 5xx (and any other non-2xx status)
  malformed_response   // 2xx but body invalid
};

std::string_view to_string(Failure failure);

struct PairResult {
  Failure failure = Failure::none;
  HttpResult http;
  std::string sync_secret;
  // Normalised: trimmed, lowercase; empties and non-64-hex entries dropped.
  std::vector<std::string> hub_token_hashes;
  std::optional<std::int64_t> latest_version;
  std::optional<std::int64_t> published_version;
  // Human-readable reason on failure; never contains secrets, nonces or signatures.
  std::string message;
};

struct TokenStateResult {
  Failure failure = Failure::none;
  HttpResult http;
  std::vector<std::string> hub_token_hashes;
  std::optional<std::int64_t> latest_version, published_version;
  nlohmann::json raw;  // whole parsed object (for telemetry keys); null on failure
  std::string message;
};

// URL building exactly as legacy (WHATWG resolution): pair = fixed path /api/hub-agent/pair
// resolved against the origin (path of base discarded); token-state = endpoint option resolved
// as a URL reference against the base (absolute URL overrides host). Returns "" if base_url is
// not an absolute http(s) URL.
std::string pair_url(std::string_view base_url);
std::string token_state_url(std::string_view base_url, std::string_view endpoint);
// The same from a base parsed once (parse_url), for callers that build URLs every cycle.
std::string pair_url(const Url& base);
std::string token_state_url(const Url& base, std::string_view endpoint);
inline constexpr std::string_view kDefaultTokenStateEndpoint = "/api/hub-agent/token-state";

// A token-state request as it goes out: the serialised body, and the same content as a value so
// that the sync can tell its contributors exactly what was sent without parsing the body back.
struct TokenStateRequest {
  nlohmann::json sent;
  std::string body;
};

class PlatformApi {
 public:
  explicit PlatformApi(Transport& transport);
  // Body exactly {"serial","ts","nonce","sig"} (key order as legacy), signed with the bootstrap
  // secret.
  PairResult pair(const std::string& url, const SignedFields& signed_fields);
  // Posts a request built by token_state_request().
  TokenStateResult token_state(const std::string& url, const TokenStateRequest& request);
  // Classifies status + envelope {"ok":false,"errorCode":...,"error":...} or older {"error":...}.
  // A 2xx gives Failure::none (body validity is checked by pair()/token_state()).
  static Failure classify(const HttpResult& http);

  // Building blocks, public for tests and for the sync engineer's logging.
  static std::string pair_body(const SignedFields& signed_fields);
  // Body: serial, ts, nonce, sig, agentSeenVersion, then the extra keys of `extra` (object) in
  // order. Keys of `extra` that would overwrite the signed fields are ignored.
  static TokenStateRequest token_state_request(const SignedFields& signed_fields,
                                               std::int64_t agent_seen_version,
                                               const nlohmann::json& extra);
  static std::string token_state_body(const SignedFields& signed_fields,
                                      std::int64_t agent_seen_version, const nlohmann::json& extra);
  // Parses a 2xx pair / token-state body; sets failure = malformed_response with a message on
  // invalid input. Never throws.
  static PairResult parse_pair_response(HttpResult http);
  static TokenStateResult parse_token_state_response(HttpResult http);
  // The `error` text of an error envelope (either shape), cut to 200 chars, "" if none.
  static std::string error_text(const HttpResult& http);

 private:
  Transport& transport_;
};

}  // namespace dinodia::platform_client
