#pragma once
// Crypto primitives shared by the bridge (hub-token hashes) and the platform client (HMAC
// signing). Thin wrappers over OpenSSL; all digests are returned as lowercase hex.
#include <cstddef>
#include <string>
#include <string_view>

namespace dinodia::crypto {

std::string to_hex(std::string_view bytes);
std::string sha256_hex(std::string_view data);
// HMAC-SHA256 with the key's bytes as given (the platform keys with the secret's text).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);
// Bytes from the OS CSPRNG (OpenSSL RAND_bytes); throws std::runtime_error if it fails.
std::string random_bytes(std::size_t count);
// Constant-time equality; different lengths compare unequal without an early exit on content.
bool constant_time_equal(std::string_view a, std::string_view b);
// True if `s` is exactly 64 lowercase-or-uppercase hex characters.
bool is_sha256_hex(std::string_view s);

}  // namespace dinodia::crypto
