// telemetry/usage_store: SQLite persistence of usage state (survives kill -9 mid-write). The 0.4.17
// JSON files are covered by legacy_usage_files_test.cpp (docs/compatibility.md#usage-files).
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "common/clock.hpp"
#include "telemetry/usage_store.hpp"

using namespace dinodia::telemetry;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
struct Dir {
  fs::path path;
  Dir() {
    char tmpl[] = "/tmp/telemetry-store-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~Dir() { fs::remove_all(path); }
  std::string db() const { return (path / "dinodia-agent.db").string(); }
  std::string file(const char* name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};
const std::int64_t t0 = *dinodia::clock::parse_iso8601_millis("2026-01-10T08:00:00.000Z");
HeatingSnapshot on() {
  return {"heat", "heat", 18.0, 21.0};
}
}  // namespace

TEST_CASE("usage state round-trips through the database", "[store]") {
  Dir d;
  HeatingTracker h;
  ElectricTracker e;
  h.observe("climate.a", HeatingLabel::boiler, on(), t0);
  h.observe("climate.a", HeatingLabel::boiler, on(), t0 + 60'000, ObservationSource::poll);
  e.observe({"light.a", "A", std::string("k"), std::string("Kitchen")}, "on", t0);
  {
    UsageStore s(d.db());
    s.save(h);
    s.save(e);
  }
  UsageStore s(d.db());
  HeatingTracker h2;
  ElectricTracker e2;
  REQUIRE(s.load(h2));
  REQUIRE(s.load(e2));
  CHECK(h2.upload_body(1) == h.upload_body(1));
  CHECK(e2.payload(1) == e.payload(1));
  CHECK(h2.find("climate.a")->on_seconds == 60);
}

TEST_CASE("kill -9 during a stream of saves leaves a consistent, recent state", "[store][crash]") {
  Dir d;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    UsageStore s(d.db());
    HeatingTracker h;
    for (std::int64_t i = 0;; ++i) {  // saves until killed
      h.observe("climate.a", HeatingLabel::radiator, on(), t0 + i * 1000, ObservationSource::poll);
      s.save(h);
      if (i == 20) std::ofstream(d.path / "ready") << "1";
    }
  }
  while (!fs::exists(d.path / "ready")) usleep(1000);
  usleep(50'000);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  UsageStore s(d.db());
  HeatingTracker h;
  REQUIRE(s.load(h));
  const auto* e = h.find("climate.a");
  REQUIRE(e != nullptr);
  CHECK(e->on_seconds >= 20);
  // totals and lastSeenAt describe the same moment: nothing half-written
  CHECK(e->last_seen_at == t0 + e->on_seconds * 1000);
}

TEST_CASE("both trackers are saved in one transaction, only when changed", "[store]") {
  Dir d;
  HeatingTracker h;
  ElectricTracker e;
  h.observe("climate.a", HeatingLabel::boiler, on(), t0);
  e.observe({"light.a", "A", std::nullopt, std::nullopt}, "off", t0);
  {
    UsageStore s(d.db());
    s.save(h, e);
    // The second tracker changes afterwards; a save of both picks it up.
    e.observe({"light.a", "A", std::nullopt, std::nullopt}, "on", t0 + 5'000);
    s.save(h, e);
  }
  UsageStore s(d.db());
  HeatingTracker h2;
  ElectricTracker e2;
  REQUIRE(s.load(h2));
  REQUIRE(s.load(e2));
  CHECK(h2.upload_body(1) == h.upload_body(1));
  REQUIRE(e2.entities().size() == 1);
  CHECK(e2.entities()[0].off_seconds == 5);
  CHECK(e2.entities()[0].last_was_on);
}

TEST_CASE("an unusable database path is a clear error", "[store]") {
  CHECK_THROWS_AS(UsageStore("/nonexistent-dir/x/dinodia-agent.db"), StoreError);
}
