#include "platform_client/platform_api.hpp"

#include <cmath>
#include <limits>

#include "common/crypto.hpp"
#include "common/text.hpp"
#include "platform_client/url.hpp"

namespace dinodia::platform_client {
namespace {

using ordered_json = nlohmann::ordered_json;

// nlohmann's parser recurses per nesting level; refuse absurd nesting before parsing so a
// hostile body cannot exhaust the stack. Platform answers nest three levels at most.
constexpr int kMaxJsonDepth = 64;

std::string dump(const ordered_json& j) {
  // Invalid UTF-8 in a contributed string must not throw mid-cycle; JSON.stringify would have
  // carried replacement characters as well.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Reads an optional non-negative integer field. Absent or null → nullopt, ok. A present value
// that is not an integral number in range → false.
bool read_version(const nlohmann::json& obj, const char* key, std::optional<std::int64_t>& out,
                  std::string& message) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {
    auto v = it->get<std::uint64_t>();
    if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      out = static_cast<std::int64_t>(v);
      return true;
    }
  } else if (it->is_number_integer()) {
    auto v = it->get<std::int64_t>();
    if (v >= 0) {
      out = v;
      return true;
    }
  } else if (it->is_number_float()) {
    // JSON does not distinguish 3 from 3.0; JavaScript producers may emit either.
    double v = it->get<double>();
    if (std::isfinite(v) && v >= 0 && v <= 9007199254740991.0 && std::floor(v) == v) {
      out = static_cast<std::int64_t>(v);
      return true;
    }
  }
  message = std::string("Platform response has an invalid ") + key + " (expected an integer).";
  return false;
}

bool read_hashes(const nlohmann::json& obj, std::vector<std::string>& out, std::string& message) {
  auto it = obj.find("hubTokenHashes");
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_array()) {
    message = "Platform response has an invalid hubTokenHashes (expected an array).";
    return false;
  }
  for (const auto& item : *it) {
    if (!item.is_string()) continue;
    std::string hash = text::lower(text::trim(item.get_ref<const std::string&>()));
    if (hash.empty() || !crypto::is_sha256_hex(hash)) continue;
    bool duplicate = false;
    for (const auto& existing : out) duplicate = duplicate || existing == hash;
    if (!duplicate) out.push_back(std::move(hash));
  }
  return true;
}

// Common 2xx validation: returns the parsed object or sets message.
std::optional<nlohmann::json> parse_object(const HttpResult& http, std::string& message) {
  if (http.truncated) {
    message = "Platform response is too large.";
    return std::nullopt;
  }
  if (text::trim(http.body).empty()) {
    message = "Platform response body is empty.";
    return std::nullopt;
  }
  if (!text::json_nesting_within(http.body, kMaxJsonDepth)) {
    message = "Platform response is nested too deeply.";
    return std::nullopt;
  }
  nlohmann::json parsed = nlohmann::json::parse(http.body, nullptr, false);
  if (parsed.is_discarded()) {
    message = "Platform response is not valid JSON.";
    return std::nullopt;
  }
  if (!parsed.is_object()) {
    message = "Platform response is not a JSON object.";
    return std::nullopt;
  }
  return parsed;
}

std::string failure_message(const HttpResult& http) {
  if (http.status == 0)
    return "Platform request failed: " + (http.error.empty() ? "other" : http.error);
  std::string text = PlatformApi::error_text(http);
  std::string out = "HTTP " + std::to_string(http.status);
  if (!text.empty()) out += ": " + text;
  return out;
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  return text::lower(haystack).find(needle) != std::string::npos;
}

// The answer to pair() or token_state(): a refusal or transport failure as classified, with its
// message and the answer kept; a 2xx body handed to that call's parser.
template <class Result>
Result classified_answer(HttpResult http, Result (*parse)(HttpResult)) {
  const Failure failure = PlatformApi::classify(http);
  if (failure == Failure::none) return parse(std::move(http));
  Result result;
  result.failure = failure;
  result.message = failure_message(http);
  result.http = std::move(http);
  return result;
}

}  // namespace

std::string_view to_string(Failure failure) {
  switch (failure) {
    case Failure::none:
      return "none";
    case Failure::transport:
      return "transport";
    case Failure::timeout:
      return "timeout";
    case Failure::not_paired:
      return "not_paired";
    case Failure::bad_signature:
      return "bad_signature";
    case Failure::replay:
      return "replay";
    case Failure::other_unauthorized:
      return "other_unauthorized";
    case Failure::unknown_serial:
      return "unknown_serial";
    case Failure::client_error:
      return "client_error";
    case Failure::server_error:
      return "server_error";
    case Failure::malformed_response:
      return "malformed_response";
  }
  return "unknown";
}

std::string pair_url(std::string_view base_url) {
  auto base = parse_url(base_url);
  return base ? pair_url(*base) : std::string();
}

std::string token_state_url(std::string_view base_url, std::string_view endpoint) {
  auto base = parse_url(base_url);
  return base ? token_state_url(*base, endpoint) : std::string();
}

std::string pair_url(const Url& base) {
  return base.origin() + "/api/hub-agent/pair";
}

std::string token_state_url(const Url& base, std::string_view endpoint) {
  if (text::trim(endpoint).empty()) endpoint = kDefaultTokenStateEndpoint;
  auto resolved = resolve_url(base, endpoint);
  return resolved ? resolved->href() : std::string();
}

PlatformApi::PlatformApi(Transport& transport) : transport_(transport) {}

std::string PlatformApi::pair_body(const SignedFields& f) {
  ordered_json body;
  body["serial"] = f.serial;
  body["ts"] = f.ts;
  body["nonce"] = f.nonce;
  body["sig"] = f.sig;
  return dump(body);
}

TokenStateRequest PlatformApi::token_state_request(const SignedFields& f,
                                                   std::int64_t agent_seen_version,
                                                   const nlohmann::json& extra) {
  ordered_json body;
  body["serial"] = f.serial;
  body["ts"] = f.ts;
  body["nonce"] = f.nonce;
  body["sig"] = f.sig;
  body["agentSeenVersion"] = agent_seen_version;
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) {
      if (body.contains(it.key())) continue;  // never let telemetry overwrite signed fields
      body[it.key()] = ordered_json::parse(
          it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  // Every contributed value above is already what a parse of the body gives back.
  TokenStateRequest request{nlohmann::json(body), dump(body)};
  return request;
}

std::string PlatformApi::token_state_body(const SignedFields& f, std::int64_t agent_seen_version,
                                          const nlohmann::json& extra) {
  return token_state_request(f, agent_seen_version, extra).body;
}

std::string PlatformApi::error_text(const HttpResult& http) {
  if (http.body.empty() || !text::json_nesting_within(http.body, kMaxJsonDepth)) return {};
  nlohmann::json parsed = nlohmann::json::parse(http.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return {};
  auto it = parsed.find("error");
  if (it == parsed.end() || !it->is_string()) return {};
  std::string text = it->get<std::string>();
  if (text.size() > 200) text.resize(200);
  return text;
}

Failure PlatformApi::classify(const HttpResult& http) {
  if (http.status == 0) return http.error == "timeout" ? Failure::timeout : Failure::transport;
  if (http.status >= 200 && http.status < 300) return Failure::none;
  std::string text = error_text(http);
  if (http.status == 401) {
    if (text == "Hub not paired yet." || contains_ci(text, "not paired"))
      return Failure::not_paired;
    if (text == "Replay detected" || contains_ci(text, "replay")) return Failure::replay;
    // Older deployments put the raw HMAC reason (timestamp window or signature) in `error`.
    if (text == "Invalid hub signature." || contains_ci(text, "signature") ||
        contains_ci(text, "timestamp")) {
      return Failure::bad_signature;
    }
    return Failure::other_unauthorized;
  }
  if (http.status == 403) return Failure::other_unauthorized;
  if (http.status == 404) {
    return contains_ci(text, "unknown hub serial") ? Failure::unknown_serial
                                                   : Failure::client_error;
  }
  if (http.status >= 400 && http.status < 500) return Failure::client_error;
  return Failure::server_error;
}

PairResult PlatformApi::parse_pair_response(HttpResult http) {
  PairResult result;
  auto fail = [&](std::string message) {
    result.failure = Failure::malformed_response;
    result.message = std::move(message);
    result.sync_secret.clear();
    result.hub_token_hashes.clear();
    result.latest_version.reset();
    result.published_version.reset();
  };
  std::string message;
  auto parsed = parse_object(http, message);
  result.http = std::move(http);
  if (!parsed) {
    fail(message);
    return result;
  }
  auto secret = parsed->find("syncSecret");
  if (secret == parsed->end() || !secret->is_string() ||
      text::trim(secret->get_ref<const std::string&>()).empty()) {
    fail("Pair response missing syncSecret.");
    return result;
  }
  result.sync_secret = std::string(text::trim(secret->get_ref<const std::string&>()));
  if (!read_hashes(*parsed, result.hub_token_hashes, message) ||
      !read_version(*parsed, "latestVersion", result.latest_version, message) ||
      !read_version(*parsed, "publishedVersion", result.published_version, message)) {
    fail(message);
  }
  return result;
}

TokenStateResult PlatformApi::parse_token_state_response(HttpResult http) {
  TokenStateResult result;
  std::string message;
  auto parsed = parse_object(http, message);
  result.http = std::move(http);
  if (parsed && read_hashes(*parsed, result.hub_token_hashes, message) &&
      read_version(*parsed, "latestVersion", result.latest_version, message) &&
      read_version(*parsed, "publishedVersion", result.published_version, message)) {
    result.raw = std::move(*parsed);
    return result;
  }
  result.failure = Failure::malformed_response;
  result.message = message;
  result.hub_token_hashes.clear();
  result.latest_version.reset();
  result.published_version.reset();
  return result;
}

PairResult PlatformApi::pair(const std::string& url, const SignedFields& signed_fields) {
  return classified_answer(transport_.post_json(url, pair_body(signed_fields)),
                           &PlatformApi::parse_pair_response);
}

TokenStateResult PlatformApi::token_state(const std::string& url,
                                          const TokenStateRequest& request) {
  return classified_answer(transport_.post_json(url, request.body),
                           &PlatformApi::parse_token_state_response);
}

}  // namespace dinodia::platform_client
