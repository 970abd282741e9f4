#include "platform_client/hub_signer.hpp"

#include "common/clock.hpp"
#include "common/crypto.hpp"

namespace dinodia::platform_client {

std::string HubSigner::signature(std::string_view serial, std::int64_t ts, std::string_view nonce,
                                 std::string_view secret) {
  std::string message;
  message.reserve(serial.size() + nonce.size() + 24);
  message.append(serial);
  message.push_back('.');
  message.append(std::to_string(ts));
  message.push_back('.');
  message.append(nonce);
  return crypto::hmac_sha256_hex(secret, message);
}

std::string HubSigner::new_nonce() {
  return crypto::to_hex(crypto::random_bytes(16));
}

SignedFields HubSigner::sign_at(std::string_view serial, std::string_view secret, std::int64_t ts) {
  SignedFields fields;
  fields.serial = std::string(serial);
  fields.ts = ts;
  fields.nonce = new_nonce();
  fields.sig = signature(fields.serial, fields.ts, fields.nonce, secret);
  return fields;
}

SignedFields HubSigner::sign_now(std::string_view serial, std::string_view secret,
                                 std::int64_t clock_offset_s) {
  return sign_at(serial, secret, clock::unix_seconds() + clock_offset_s);
}

}  // namespace dinodia::platform_client
