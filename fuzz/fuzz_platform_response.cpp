// Fuzzes the platform response handling (docs/platform-protocol.md#errors): PlatformApi::classify,
// error_text, parse_pair_response, parse_token_state_response, and pair()/token_state() over a
// transport that answers with the fuzzed response.
//
// Input layout: 2 bytes HTTP status (big endian, mod 700; 0 = transport failure), 1 flag byte
// (bit 0: body truncated; bits 1-2: transport error class), then the body.
//
// Invariants: nothing throws; accepted hashes are unique 64-char lowercase hex; versions are
// non-negative; a failed parse carries no secret, hashes or versions; a successful pair has a
// trimmed non-empty syncSecret; classification is consistent with the status; messages never
// contain the request's nonce or signature, nor the syncSecret of a 2xx body.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.hpp"
#include "fuzz/fuzz_check.hpp"
#include "platform_client/platform_api.hpp"

namespace {

namespace pc = dinodia::platform_client;
using pc::Failure;

// Sentinels the agent holds; a message may only show them if the platform echoed them.
constexpr std::string_view kNonce = "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a90";
constexpr std::string_view kSig =
    "5be1d0a7c3f94e28b6a0d2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3";

class CannedTransport : public pc::Transport {
 public:
  explicit CannedTransport(pc::HttpResult result) : result_(std::move(result)) {}
  pc::HttpResult post_json(const std::string&, const std::string&) override { return result_; }
  pc::HttpResult get(const std::string&) override { return result_; }

 private:
  pc::HttpResult result_;
};

bool is_lower_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void check_hashes(const std::vector<std::string>& hashes) {
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    FUZZ_CHECK(is_lower_hex64(hashes[i]), "hash is 64 lowercase hex");
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(hashes[i] != hashes[j], "hashes are unique");
  }
}

void check_versions(const std::optional<std::int64_t>& latest,
                    const std::optional<std::int64_t>& published) {
  FUZZ_CHECK(!latest || *latest >= 0, "latestVersion non-negative");
  FUZZ_CHECK(!published || *published >= 0, "publishedVersion non-negative");
}

void check_no_request_secrets(const std::string& message, const std::string& body) {
  if (body.find(kNonce) == std::string::npos) {
    FUZZ_CHECK(message.find(kNonce) == std::string::npos, "message has no nonce");
  }
  if (body.find(kSig) == std::string::npos) {
    FUZZ_CHECK(message.find(kSig) == std::string::npos, "message has no signature");
  }
}

// The syncSecret a 2xx body carries, if it looks like one (has a digit, 8+ chars): real ones
// are 48 hex chars; the digit keeps it from matching the fixed English messages by chance.
std::string body_sync_secret(const std::string& body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (!parsed.is_object()) return {};
  auto it = parsed.find("syncSecret");
  if (it == parsed.end() || !it->is_string()) return {};
  std::string secret(dinodia::text::trim(it->get<std::string>()));
  bool has_digit = false;
  for (char c : secret) has_digit = has_digit || (c >= '0' && c <= '9');
  return secret.size() >= 8 && has_digit ? secret : std::string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  pc::HttpResult http;
  http.status = ((data[0] << 8) | data[1]) % 700;
  http.truncated = (data[2] & 1) != 0;
  static const char* const kErrors[] = {"", "timeout", "connect", "other"};
  if (http.status == 0) http.error = kErrors[(data[2] >> 1) & 3];
  http.body.assign(reinterpret_cast<const char*>(data + 3), size - 3);
  const bool is_2xx = http.status >= 200 && http.status < 300;

  const Failure failure = pc::PlatformApi::classify(http);
  FUZZ_CHECK(failure != Failure::malformed_response, "classify never says malformed");
  if (http.status == 0) {
    FUZZ_CHECK(failure == Failure::transport || failure == Failure::timeout, "status 0");
  } else if (is_2xx) {
    FUZZ_CHECK(failure == Failure::none, "2xx classifies as none");
  } else {
    FUZZ_CHECK(
        failure != Failure::none && failure != Failure::transport && failure != Failure::timeout,
        "non-2xx is an HTTP failure");
  }
  FUZZ_CHECK(!pc::to_string(failure).empty() && pc::to_string(failure) != "unknown",
             "failure has a name");
  FUZZ_CHECK(pc::PlatformApi::error_text(http).size() <= 200, "error text is cut to 200");

  const std::string secret = is_2xx ? body_sync_secret(http.body) : std::string();

  pc::PairResult pair = pc::PlatformApi::parse_pair_response(http);
  check_hashes(pair.hub_token_hashes);
  check_versions(pair.latest_version, pair.published_version);
  if (pair.failure == Failure::none) {
    FUZZ_CHECK(pair.message.empty(), "successful pair has no message");
    FUZZ_CHECK(!pair.sync_secret.empty(), "successful pair has a syncSecret");
    FUZZ_CHECK(dinodia::text::trim(pair.sync_secret).size() == pair.sync_secret.size(),
               "syncSecret is trimmed");
  } else {
    FUZZ_CHECK(pair.failure == Failure::malformed_response, "parse failure is malformed");
    FUZZ_CHECK(!pair.message.empty(), "parse failure has a message");
    FUZZ_CHECK(pair.sync_secret.empty() && pair.hub_token_hashes.empty() && !pair.latest_version &&
                   !pair.published_version,
               "failed pair carries nothing");
  }
  if (!secret.empty()) {
    FUZZ_CHECK(pair.message.find(secret) == std::string::npos, "pair message has no secret");
  }

  pc::TokenStateResult state = pc::PlatformApi::parse_token_state_response(http);
  check_hashes(state.hub_token_hashes);
  check_versions(state.latest_version, state.published_version);
  if (state.failure == Failure::none) {
    FUZZ_CHECK(state.raw.is_object(), "successful token-state keeps the object");
    FUZZ_CHECK(state.message.empty(), "successful token-state has no message");
  } else {
    FUZZ_CHECK(state.failure == Failure::malformed_response, "parse failure is malformed");
    FUZZ_CHECK(!state.message.empty(), "parse failure has a message");
    FUZZ_CHECK(state.hub_token_hashes.empty() && !state.latest_version && !state.published_version,
               "failed token-state carries nothing");
  }
  if (!secret.empty()) {
    FUZZ_CHECK(state.message.find(secret) == std::string::npos, "state message has no secret");
  }

  // The full calls, as the sync cycle makes them.
  CannedTransport transport(http);
  pc::PlatformApi api(transport);
  pc::SignedFields fields{"DIN-GB-00001234", 1700000000, std::string(kNonce), std::string(kSig)};
  pc::PairResult called = api.pair("https://app.example/api/hub-agent/pair", fields);
  FUZZ_CHECK(
      is_2xx ? (called.failure == Failure::none || called.failure == Failure::malformed_response)
             : called.failure == failure,
      "pair() failure matches classify()");
  FUZZ_CHECK(called.failure == Failure::none || !called.message.empty(),
             "a failed pair() says why");
  FUZZ_CHECK(called.failure != Failure::none || called.sync_secret == pair.sync_secret,
             "pair() agrees with parse_pair_response()");
  check_hashes(called.hub_token_hashes);
  check_no_request_secrets(called.message, http.body);

  nlohmann::json extra = {{"lanBaseUrl", "http://192.168.1.20:8123"}};
  pc::TokenStateResult state_called =
      api.token_state("https://app.example/api/hub-agent/token-state",
                      pc::PlatformApi::token_state_request(fields, 3, extra));
  FUZZ_CHECK(is_2xx ? state_called.failure == state.failure : state_called.failure == failure,
             "token_state() failure matches");
  check_hashes(state_called.hub_token_hashes);
  check_no_request_secrets(state_called.message, http.body);
  return 0;
}
