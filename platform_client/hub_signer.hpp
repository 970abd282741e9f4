#pragma once
// Request signing for the platform's hub-agent routes (docs/platform-protocol.md#signing):
// sig = lowercase hex HMAC-SHA256, key = the secret's text (not hex-decoded), message =
// "<serial>.<ts>.<nonce>". Every request gets a fresh nonce, so a signed body is never resent.
#include <cstdint>
#include <string>
#include <string_view>

namespace dinodia::platform_client {

struct SignedFields {
  std::string serial;
  std::int64_t ts = 0;
  std::string nonce;
  std::string sig;
};

class HubSigner {
 public:
  // sig = lowercase hex HMAC-SHA256(key = secret text, msg = serial + "." + ts + "." + nonce)
  static std::string signature(std::string_view serial, std::int64_t ts, std::string_view nonce,
                               std::string_view secret);
  // Fresh 16-byte CSPRNG nonce (32 lowercase hex) and ts = unix seconds now + clock_offset_s.
  static SignedFields sign_now(std::string_view serial, std::string_view secret,
                               std::int64_t clock_offset_s = 0);
  // Same, with an explicit timestamp (tests, and re-signing with a corrected clock).
  static SignedFields sign_at(std::string_view serial, std::string_view secret, std::int64_t ts);
  static std::string new_nonce();
};

}  // namespace dinodia::platform_client
