// common/: crypto primitives, text helpers, clock parsing. Vectors come from the specs
// (RFC 4231, docs/compatibility.md#hub-tokens, docs/platform-protocol.md#signing), not from our own
// output.
#include <malloc.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/code_pages.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/process_limits.hpp"
#include "common/text.hpp"

using namespace dinodia;

TEST_CASE("sha256_hex matches the legacy hub-token vector", "[crypto]") {
  CHECK(crypto::sha256_hex("example-hub-token") ==
        "fde1bc094b00277cfc92be793d20c5792fc46ed8ababf86b9927b7aa26344e61");
}

TEST_CASE("hmac_sha256_hex matches RFC 4231 test cases", "[crypto]") {
  CHECK(crypto::hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(crypto::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(crypto::hmac_sha256_hex(std::string(20, '\xaa'), std::string(50, '\xdd')) ==
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  std::string key4;
  for (int i = 1; i <= 25; ++i) key4.push_back(static_cast<char>(i));
  CHECK(crypto::hmac_sha256_hex(key4, std::string(50, '\xcd')) ==
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  CHECK(crypto::hmac_sha256_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32) ==
        "a3b6167473100ee06e0c796c2955552b");
  CHECK(crypto::hmac_sha256_hex(std::string(131, '\xaa'),
                                "Test Using Larger Than Block-Size Key - Hash Key First") ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  CHECK(crypto::hmac_sha256_hex(
            std::string(131, '\xaa'),
            "This is a test using a larger than block-size key and a larger than block-size data. "
            "The key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("hmac over serial.ts.nonce matches the legacy signing vector", "[crypto]") {
  CHECK(crypto::hmac_sha256_hex("bootstrap-secret-example",
                                "HUB-TEST-0001.1700000000.00112233445566778899aabbccddeeff") ==
        "e9e99fd3a7d0d0181027a72f5a4112d13a6f2c172e47831f66d9d90a1f1502b5");
}

TEST_CASE("random_bytes gives the requested length and does not repeat", "[crypto]") {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    auto b = crypto::random_bytes(16);
    REQUIRE(b.size() == 16);
    seen.insert(b);
  }
  CHECK(seen.size() == 2000);
}

TEST_CASE("constant_time_equal", "[crypto]") {
  CHECK(crypto::constant_time_equal("abc", "abc"));
  CHECK_FALSE(crypto::constant_time_equal("abc", "abd"));
  CHECK_FALSE(crypto::constant_time_equal("abc", "abcd"));
  CHECK_FALSE(crypto::constant_time_equal("", ""));  // an empty secret never matches
}

TEST_CASE("is_sha256_hex", "[crypto]") {
  CHECK(crypto::is_sha256_hex(std::string(64, 'a')));
  CHECK(crypto::is_sha256_hex(std::string(64, 'F')));
  CHECK_FALSE(crypto::is_sha256_hex(std::string(63, 'a')));
  CHECK_FALSE(crypto::is_sha256_hex(std::string(63, 'a') + "g"));
}

TEST_CASE("bearer_token follows the legacy /^Bearer\\s+(.+)$/i then trim", "[text]") {
  CHECK(text::bearer_token("Bearer abc") == "abc");
  CHECK(text::bearer_token("bearer   example-hub-token  ") == "example-hub-token");
  CHECK(text::bearer_token("BEARER\tx") == "x");
  CHECK(text::bearer_token("Bearer") == "");
  CHECK(text::bearer_token("Bearerabc") == "");
  CHECK(text::bearer_token("Basic abc") == "");
  CHECK(text::bearer_token("Bearer    ") == "");
}

TEST_CASE("trim and lower", "[text]") {
  CHECK(text::trim("  a b \r\n") == "a b");
  CHECK(text::trim("") == "");
  CHECK(text::lower("AbC-1") == "abc-1");
  CHECK(text::iequals("Content-Length", "content-length"));
}

TEST_CASE("ISO-8601 formatting and parsing agree with JavaScript's Date", "[clock]") {
  CHECK(clock::iso8601_from_millis(0) == "1970-01-01T00:00:00.000Z");
  CHECK(clock::iso8601_from_millis(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(clock::parse_iso8601_millis("2023-11-14T22:13:20.123Z") == 1700000000123);
  CHECK(clock::parse_iso8601_millis("2023-11-14T22:13:20Z") == 1700000000000);
  CHECK(clock::parse_iso8601_millis("2023-11-14T23:13:20.123+01:00") == 1700000000123);
  CHECK(clock::parse_iso8601_millis("2023-11-14T22:13:20.123456+00:00") == 1700000000123);
  CHECK(clock::parse_iso8601_millis("2023-11-14") == 1699920000000);
  CHECK_FALSE(clock::parse_iso8601_millis("not a date"));
  CHECK_FALSE(clock::parse_iso8601_millis("2023-13-01T00:00:00Z"));
  CHECK_FALSE(clock::parse_iso8601_millis("2023-11-14T22:13:20Zjunk"));
}

TEST_CASE("HTTP Date header parsing", "[clock]") {
  CHECK(clock::parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT") == 1700000000);
  CHECK_FALSE(clock::parse_http_date("yesterday"));
}

// 32-bit ARM (armhf) has a 32-bit time_t: dates from 2038-01-19T03:14:08Z on must still come out
// right (docs/building.md, "ARM test suites").
TEST_CASE("dates after January 2038 and before 1970 format and parse exactly", "[clock]") {
  CHECK(clock::iso8601_from_millis(2147483647999) == "2038-01-19T03:14:07.999Z");
  CHECK(clock::iso8601_from_millis(2147483648000) == "2038-01-19T03:14:08.000Z");
  CHECK(clock::iso8601_from_millis(2214131696789) == "2040-02-29T12:34:56.789Z");
  CHECK(clock::iso8601_from_millis(4294967296000) == "2106-02-07T06:28:16.000Z");
  CHECK(clock::iso8601_from_millis(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(clock::iso8601_from_millis(-2203891200000) == "1900-03-01T00:00:00.000Z");
  CHECK(clock::parse_iso8601_millis("2040-02-29T12:34:56.789Z") == 2214131696789);
  CHECK(clock::parse_iso8601_millis("2106-02-07T06:28:16Z") == 4294967296000);

  CHECK(clock::http_date(1700000000) == "Tue, 14 Nov 2023 22:13:20 GMT");
  CHECK(clock::http_date(2147483648) == "Tue, 19 Jan 2038 03:14:08 GMT");
  CHECK(clock::http_date(2214131696) == "Wed, 29 Feb 2040 12:34:56 GMT");
  CHECK(clock::http_date(4294967296) == "Sun, 07 Feb 2106 06:28:16 GMT");
  CHECK(clock::http_date(-1) == "Wed, 31 Dec 1969 23:59:59 GMT");
  CHECK(clock::parse_http_date("Wed, 29 Feb 2040 12:34:56 GMT") == 2214131696);

  // Formatting and parsing are inverses, day by day across 2038 and a leap day of 2040.
  for (std::int64_t s = 2147483647 - 3 * 86400; s < 2214131696 + 3 * 86400; s += 86400 + 7) {
    INFO(s);
    CHECK(clock::parse_iso8601_millis(clock::iso8601_from_millis(s * 1000 + 5)) == s * 1000 + 5);
    CHECK(clock::parse_http_date(clock::http_date(s)) == s);
  }
}

TEST_CASE("log fields render like Node's util.inspect", "[log]") {
  CHECK(log::Fields().add("port", 8099).str() == "{ port: 8099 }");
  CHECK(log::Fields().add("path", "/api/x").add("status", 404).str() ==
        "{ path: '/api/x', status: 404 }");
  CHECK(log::Fields().str() == "{}");
  CHECK(log::parse_level("warn") == log::Level::warn);
  CHECK(log::parse_level("bogus") == log::Level::info);
}

TEST_CASE("sha256 and sha256_from_hex: the same digest as bytes and as hex, either case") {
  using dinodia::crypto::Sha256Digest;
  const Sha256Digest digest = dinodia::crypto::sha256("abc");
  const std::string hex = dinodia::crypto::sha256_hex("abc");
  CHECK(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Digest parsed{};
  REQUIRE(dinodia::crypto::sha256_from_hex(hex, parsed));
  CHECK(parsed == digest);
  Sha256Digest upper{};
  REQUIRE(dinodia::crypto::sha256_from_hex(
      "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", upper));
  CHECK(upper == digest);
  Sha256Digest bad{};
  CHECK_FALSE(dinodia::crypto::sha256_from_hex(hex.substr(1), bad));
  CHECK_FALSE(dinodia::crypto::sha256_from_hex(std::string(64, 'g'), bad));
}

TEST_CASE("allocator_tunables: per-thread caches off unless already set or under a preload") {
  using dinodia::process::allocator_tunables;
  CHECK(allocator_tunables(std::nullopt, false) == "glibc.malloc.tcache_count=0");
  CHECK(allocator_tunables(std::string(), false) == "glibc.malloc.tcache_count=0");
  // Someone else's settings are kept, the cache setting added once.
  CHECK(allocator_tunables(std::string("glibc.malloc.arena_max=2"), false) ==
        "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0");
  // Already set (after the restart, or by whoever started the agent): no restart, no loop.
  CHECK_FALSE(allocator_tunables(std::string("glibc.malloc.tcache_count=0"), false));
  CHECK_FALSE(allocator_tunables(std::string("glibc.malloc.tcache_count=7"), false));
  // valgrind and heaptrack preload their tools; a restart would run on without them.
  CHECK_FALSE(allocator_tunables(std::nullopt, true));
}

namespace {
long own_status_kib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

struct Shape {
  virtual ~Shape() = default;
  virtual int sides() const = 0;
};
struct Square final : Shape {
  int sides() const override { return 4; }
};
struct Triangle final : Shape {
  int sides() const override { return 3; }
};
int twice(int x) {
  return 2 * x;
}
int thrice(int x) {
  return 3 * x;
}
// A table of function pointers: relocated at start in a position-independent build, so its page
// is private (Anonymous) and must be left alone.
int (*const kTable[])(int) = {twice, thrice};
}  // namespace

// Whether /proc/self/smaps is this process's own: then /proc/self/maps filters none of its
// droppable ranges out (common/code_pages.hpp). One reading of smaps serves both sides.
bool smaps_is_this_process() {
  std::ifstream smaps_file("/proc/self/smaps");
  const std::string smaps{std::istreambuf_iterator<char>(smaps_file), {}};
  std::istringstream smaps_alone(smaps), smaps_as_maps(smaps), smaps_filtered(smaps);
  std::ifstream maps("/proc/self/maps");
  const auto spans = [](const std::vector<dinodia::process::FileRange>& ranges) {
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> out;
    for (const auto& r : ranges) out.emplace_back(r.begin, r.end);
    return out;
  };
  return spans(dinodia::process::droppable_file_ranges(smaps_alone, smaps_as_maps)) ==
         spans(dinodia::process::droppable_file_ranges(smaps_filtered, maps));
}

TEST_CASE(
    "droppable_file_ranges: resident read-only file mappings without private pages, that "
    "maps lists too") {
  std::istringstream smaps(
      "00400000-00500000 r--p 00000000 08:01 1234 /usr/bin/agent\n"
      "Rss:                 120 kB\n"
      "Anonymous:             0 kB\n"
      "00500000-00600000 r-xp 00100000 08:01 1234 /usr/bin/agent\n"
      "Rss:                 300 kB\n"
      "Anonymous:             0 kB\n"
      "00600000-00610000 r--p 00200000 08:01 1234 /usr/bin/agent\n"
      "Rss:                  16 kB\n"
      "Anonymous:             4 kB\n"
      "00610000-00620000 rw-p 00210000 08:01 1234 /usr/bin/agent\n"
      "Rss:                  16 kB\n"
      "Anonymous:             0 kB\n"
      "00700000-00710000 r--p 00000000 00:00 0 \n"
      "Rss:                  16 kB\n"
      "Anonymous:             0 kB\n"
      "00800000-00900000 r--p 00000000 08:01 99 /usr/lib/libc.so.6\n"
      "Rss:                   0 kB\n"
      "Anonymous:             0 kB\n"
      "7f0000000000-7f0000100000 r-xp 00000000 08:01 77 /usr/bin/qemu-arm-static\n"
      "Rss:                 800 kB\n"
      "Anonymous:             0 kB\n");
  // maps lists the process's own mappings; the last smaps entry is not among them.
  std::istringstream maps(
      "00400000-00500000 r--p 00000000 08:01 1234 /usr/bin/agent\n"
      "00500000-00600000 r-xp 00100000 08:01 1234 /usr/bin/agent\n"
      "00600000-00610000 r--p 00200000 08:01 1234 /usr/bin/agent\n"
      "00610000-00620000 rw-p 00210000 08:01 1234 /usr/bin/agent\n"
      "00700000-00710000 r--p 00000000 00:00 0 \n"
      "00800000-00900000 r--p 00000000 08:01 99 /usr/lib/libc.so.6\n");
  const auto ranges = dinodia::process::droppable_file_ranges(smaps, maps);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].begin == 0x400000);
  CHECK(ranges[0].end == 0x500000);
  CHECK(ranges[0].resident_kib == 120);
  CHECK(ranges[1].begin == 0x500000);
  CHECK(ranges[1].resident_kib == 300);

  // The same smaps against a maps of other addresses (an emulator's view): nothing.
  std::istringstream smaps_again(smaps.str());
  std::istringstream other_maps("10000-20000 r--p 00000000 08:01 1234 /usr/bin/agent\n");
  CHECK(dinodia::process::droppable_file_ranges(smaps_again, other_maps).empty());
}

TEST_CASE("release_file_pages: read-only file pages unmapped, relocated data and code intact") {
  // What a process touched to start: its own code and the libraries'.
  std::vector<std::unique_ptr<Shape>> shapes;
  shapes.push_back(std::make_unique<Square>());
  shapes.push_back(std::make_unique<Triangle>());
  const std::function<int(int)> via_function = thrice;
  const long before = own_status_kib("RssFile");
  const std::size_t released = dinodia::process::release_file_pages();
  const long after = own_status_kib("RssFile");
  INFO("RssFile " << before << " -> " << after << " KiB; released " << released << " KiB");
  if (smaps_is_this_process()) {
    CHECK(released > 256);
    CHECK(after < before - 256);
  }
  // Otherwise qemu-user before 8.1 (scripts/test-arch.sh): smaps is the emulator's and only what
  // maps lists too may have been dropped; what follows must run either way.
  // The code and the relocated tables work on: virtual calls, function pointers, std::function,
  // the C library, exceptions (their tables are read-only file pages too).
  CHECK(shapes[0]->sides() + shapes[1]->sides() == 7);
  CHECK(kTable[0](5) + kTable[1](5) == 25);
  CHECK(via_function(7) == 21);
  CHECK(std::to_string(42) == "42");
  CHECK_THROWS_AS(std::stoi("not a number"), std::invalid_argument);
  CHECK(dinodia::crypto::sha256_hex("example-hub-token").size() == 64);
}

TEST_CASE("tune_allocator: every thread allocates from one heap") {
  dinodia::process::tune_allocator();
  // Threads that allocate at the same time: glibc would give each its own arena.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 20000; ++i) {
        void* p = std::malloc(static_cast<std::size_t>(64 + i % 512));
        std::free(p);
      }
    });
  }
  for (auto& t : threads) t.join();
  char* text = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  REQUIRE(out != nullptr);
  REQUIRE(malloc_info(0, out) == 0);
  std::fclose(out);
  const std::string info(text, size);
  std::free(text);
  std::size_t heaps = 0;
  for (auto at = info.find("<heap nr="); at != std::string::npos;
       at = info.find("<heap nr=", at + 1)) {
    ++heaps;
  }
  INFO(info.substr(0, 400));
  CHECK(heaps == 1);
}
