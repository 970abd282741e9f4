#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "platform_client/hub_signer.hpp"

using dinodia::platform_client::HubSigner;
namespace crypto = dinodia::crypto;

namespace {
std::string repeat(char c, std::size_t n) {
  return std::string(n, c);
}
}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231 test cases", "[hub_signer]") {
  // RFC 4231
  CHECK(crypto::hmac_sha256_hex(repeat('\x0b', 20), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(crypto::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(crypto::hmac_sha256_hex(repeat('\xaa', 20), repeat('\xdd', 50)) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  std::string key4;
  for (int i = 1; i <= 25; ++i) key4.push_back(static_cast<char>(i));
  CHECK(crypto::hmac_sha256_hex(key4, repeat('\xcd', 50)) ==
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  CHECK(crypto::hmac_sha256_hex(repeat('\x0c', 20), "Test With Truncation").substr(0, 32) ==
        "a3b6167473100ee06e0c796c2955552b");
  CHECK(crypto::hmac_sha256_hex(repeat('\xaa', 131),
                                "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(crypto::hmac_sha256_hex(
            repeat('\xaa', 131),
            "This is a test using a larger than block-size key and a larger than block-size data. "
            "The key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("signature reproduces the legacy agent's vector", "[hub_signer]") {
  // docs/platform-protocol.md#signing
  CHECK(HubSigner::signature("HUB-TEST-0001", 1700000000, "00112233445566778899aabbccddeeff",
                             "bootstrap-secret-example") ==
        "e9e99fd3a7d0d0181027a72f5a4112d13a6f2c172e47831f66d9d90a1f1502b5");
}

TEST_CASE("signature keys with the secret's text and signs serial.ts.nonce", "[hub_signer]") {
  // A 48-hex secret is used as text, not hex-decoded (docs/platform-protocol.md#signing).
  const std::string secret = "00112233445566778899aabbccddeeff0011223344556677";
  CHECK(HubSigner::signature("S", 5, "n", secret) == crypto::hmac_sha256_hex(secret, "S.5.n"));
  CHECK(HubSigner::signature("S", -5, "n", secret) == crypto::hmac_sha256_hex(secret, "S.-5.n"));
  CHECK(HubSigner::signature("S", 5, "n", secret) != HubSigner::signature("S", 6, "n", secret));
}

TEST_CASE("nonces are 32 lowercase hex characters and never repeat", "[hub_signer]") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string nonce = HubSigner::new_nonce();
    REQUIRE(nonce.size() == 32);
    REQUIRE(nonce.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(nonce);
  }
  CHECK(seen.size() == 10000);
}

TEST_CASE("sign_now uses the current time plus the clock offset and a fresh nonce",
          "[hub_signer]") {
  const auto before = dinodia::clock::unix_seconds();
  auto a = HubSigner::sign_now("HUB-1", "secret");
  auto b = HubSigner::sign_now("HUB-1", "secret", -600);
  const auto after = dinodia::clock::unix_seconds();
  CHECK(a.serial == "HUB-1");
  CHECK(a.ts >= before);
  CHECK(a.ts <= after);
  CHECK(b.ts >= before - 600);
  CHECK(b.ts <= after - 600);
  CHECK(a.nonce != b.nonce);
  CHECK(a.sig == HubSigner::signature("HUB-1", a.ts, a.nonce, "secret"));
  CHECK(b.sig == HubSigner::signature("HUB-1", b.ts, b.nonce, "secret"));
  auto c = HubSigner::sign_at("HUB-1", "secret", 1700000000);
  CHECK(c.ts == 1700000000);
  CHECK(c.sig == HubSigner::signature("HUB-1", 1700000000, c.nonce, "secret"));
}
