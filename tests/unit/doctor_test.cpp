// The doctor's verdict rules (agent/doctor.hpp) and the reporter's log throttle
// (agent/doctor_reporter.hpp). The checks against real processes are in
// tests/integration/doctor_test.cpp.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "agent/doctor.hpp"
#include "agent/doctor_reporter.hpp"
#include "platform_client/transport.hpp"

namespace {

using dinodia::agent::clock_check;
using dinodia::agent::DoctorCheck;
using dinodia::agent::DoctorReport;
using dinodia::agent::DoctorReporter;
using dinodia::agent::platform_check;
using dinodia::agent::Verdict;
using dinodia::platform_client::HttpResult;
using namespace std::chrono_literals;

HttpResult answer(int status, const std::string& backend = "") {
  HttpResult h;
  h.status = status;
  h.backend = backend;
  return h;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("doctor: platform health verdicts", "[doctor]") {
  const std::string origin = "https://app.example";
  SECTION("2xx is healthy") {
    const DoctorCheck c = platform_check("primary", origin, answer(200, "aws"));
    CHECK(c.verdict == Verdict::ok);
    CHECK(c.id == "platform_primary");
    CHECK(has(c.detail, "healthy"));
    CHECK(c.action.empty());
  }
  SECTION("5xx is reachable but not healthy") {
    const DoctorCheck c = platform_check("primary", origin, answer(503, "aws"));
    CHECK(c.verdict == Verdict::fail);
    CHECK(has(c.detail, "not healthy"));
    CHECK(has(c.detail, "HTTP 503"));
    CHECK_FALSE(c.action.empty());
  }
  SECTION("404 is not healthy, unless the Worker says the Vercel origin answered") {
    const DoctorCheck plain = platform_check("primary", origin, answer(404));
    CHECK(plain.verdict == Verdict::fail);
    CHECK(has(plain.action, "Unset platform_base_url"));
    CHECK(platform_check("primary", origin, answer(404, "aws")).verdict == Verdict::fail);
    CHECK(platform_check("primary", origin, answer(404, "vercel")).verdict == Verdict::ok);
  }
  SECTION("transport failures name their cause") {
    HttpResult tls;
    tls.error = "tls";
    const DoctorCheck c = platform_check("primary", origin, tls);
    CHECK(c.verdict == Verdict::fail);
    CHECK(has(c.detail, "TLS error"));
    HttpResult dns;
    dns.error = "dns";
    CHECK(has(platform_check("primary", origin, dns).detail, "DNS"));
    HttpResult refused;
    refused.error = "connect";
    CHECK(has(platform_check("primary", origin, refused).detail, "unreachable"));
  }
  SECTION("an unhealthy canary is a warning: the sync falls back to the primary") {
    const DoctorCheck c = platform_check("canary", origin, answer(503, "aws"));
    CHECK(c.verdict == Verdict::warn);
    CHECK(c.id == "platform_canary");
    CHECK(has(c.action, "falls back"));
  }
}

TEST_CASE("doctor: clock verdicts", "[doctor]") {
  const std::string origin = "https://app.example";
  CHECK(clock_check(0, origin).verdict == Verdict::ok);
  CHECK(clock_check(-30, origin).verdict == Verdict::ok);
  CHECK(clock_check(120, origin).verdict == Verdict::warn);
  const DoctorCheck behind = clock_check(600, origin);
  CHECK(behind.verdict == Verdict::fail);
  CHECK(has(behind.detail, "hub clock is off by 600 s (behind"));
  CHECK(has(clock_check(-600, origin).detail, "ahead of"));
  CHECK(clock_check(std::nullopt, origin).verdict == Verdict::warn);
}

TEST_CASE("doctor: report summary and JSON", "[doctor]") {
  DoctorReport report;
  report.at = "2026-12-06T20:00:00.000Z";
  report.checks.push_back({"clock", "Clock", Verdict::ok, "fine", ""});
  CHECK(dinodia::agent::doctor_summary(report) == "All checks passed.");
  report.checks.push_back({"port", "Port 8099", Verdict::fail, "in use", "Free it."});
  report.checks.push_back({"pairing", "Pairing", Verdict::warn, "old", "Wait."});
  CHECK(report.overall() == Verdict::fail);
  CHECK(dinodia::agent::doctor_summary(report) == "1 failure(s), 1 warning(s), 1 ok.");
  const auto lines = dinodia::agent::doctor_report_lines(report);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "ok Clock: fine");
  CHECK(lines[1] == "FAIL Port 8099: in use. Action: Free it.");
  const auto j = dinodia::agent::doctor_report_json(report);
  CHECK(j["ok"] == false);
  CHECK(j["verdict"] == "fail");
  CHECK(j["counts"]["warn"] == 1);
  CHECK(j["checks"][0]["action"].is_null());
  CHECK(j["checks"][1]["verdict"] == "fail");
}

TEST_CASE("doctor reporter: start-up report once, failure reports at most once per interval",
          "[doctor]") {
  std::atomic<int> runs{0};
  DoctorReporter reporter(
      [&runs] {
        ++runs;
        return DoctorReport{};
      },
      400ms);
  auto wait_runs = [&runs](int n) {
    for (int i = 0; i < 200 && runs.load() < n; ++i) std::this_thread::sleep_for(10ms);
    return runs.load();
  };
  reporter.start();
  reporter.sync_failed();  // before the start-up report: nothing
  reporter.first_sync_finished();
  std::this_thread::sleep_for(100ms);
  CHECK(runs.load() == 0);  // the bridge does not listen yet
  reporter.bridge_listening();
  CHECK(wait_runs(1) == 1);
  for (int i = 0; i < 5; ++i) reporter.sync_failed();  // within the interval: no report
  std::this_thread::sleep_for(150ms);
  CHECK(runs.load() == 1);
  std::this_thread::sleep_for(350ms);
  reporter.sync_failed();
  reporter.sync_failed();
  CHECK(wait_runs(2) == 2);
  std::this_thread::sleep_for(100ms);
  CHECK(runs.load() == 2);
  // An endpoint request always gets a fresh report.
  std::atomic<bool> answered{false};
  reporter.request([&answered](const DoctorReport&) { answered = true; });
  CHECK(wait_runs(3) == 3);
  for (int i = 0; i < 200 && !answered; ++i) std::this_thread::sleep_for(10ms);
  CHECK(answered);
  CHECK(reporter.stop(2s));
}
