#pragma once
// Crypto primitives shared by the bridge (hub-token hashes) and the platform client (HMAC
// signing). Thin wrappers over OpenSSL; all digests are returned as lowercase hex.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace dinodia::crypto {

using Sha256Digest = std::array<unsigned char, 32>;

std::string to_hex(std::string_view bytes);
Sha256Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
// The 32 bytes a 64-character hex SHA-256 spells (either case); false if it is not one.
bool sha256_from_hex(std::string_view hex, Sha256Digest& out);
// HMAC-SHA256 with the key's bytes as given (the platform keys with the secret's text).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);
// Bytes from the OS CSPRNG (OpenSSL RAND_bytes); throws std::runtime_error if it fails.
std::string random_bytes(std::size_t count);
// Constant-time equality; different lengths compare unequal without an early exit on content.
bool constant_time_equal(std::string_view a, std::string_view b);
// Overwrites a secret's bytes in a way the compiler may not optimise away, then empties it.
void wipe(std::string& secret);
// True if `s` is exactly 64 lowercase-or-uppercase hex characters.
bool is_sha256_hex(std::string_view s);
// Frees what OpenSSL keeps for the calling thread (its random generators, its error queue), as
// OpenSSL does itself when the thread ends. For a thread whose end another thread waits on: the
// state is gone before the wait is over, not some time after it (docs/architecture.md#doctor).
void release_thread_state();

}  // namespace dinodia::crypto
