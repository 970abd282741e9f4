#pragma once
// The installer diagnostics (addon/DOCS.md#installer-diagnostics, docs/compatibility.md#doctor):
// each check ends in a verdict (ok / warn / fail), what was found, and for warn and fail the
// action to take, in words an installer understands. The same report is printed by
// `dinodia-hub-agent doctor`, logged by the running agent (agent/doctor_reporter.hpp) and served
// as JSON at GET /_dinodia/doctor (agent/doctor_endpoint.hpp).
//
// Checks: each configured platform origin (GET /api/health: reachable and healthy), the hub clock
// against the platform's Date header, the pairing state in the state database, the Supervisor and
// Home Assistant Core (as the agent calls them: DINODIA_SUPERVISOR_URL with SUPERVISOR_TOKEN), the
// LAN address the sync publishes (HaSyncFetches::lan_address, the sync's own code path), and the
// configured port. The command line adds a real pairing attempt with the bootstrap secret.
//
// Time-bounded: the checks run in parallel, each with its own timeout (at most 12 s for the
// longest chain, a platform health check followed by the pairing attempt), and the report is
// complete after kDoctorTotalTimeout at the latest; a check still running then is a fail. No
// report text ever holds a secret (tokens, the bootstrap or sync secret).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/environment.hpp"
#include "agent/options.hpp"

namespace boost::asio {
class io_context;
}

namespace dinodia::platform_client {
struct HttpResult;
}

namespace dinodia::agent {

class StateStore;

inline constexpr std::chrono::seconds kDoctorTotalTimeout{15};

enum class Verdict { ok, warn, fail };
const char* verdict_name(Verdict verdict);  // "ok", "warn", "fail"

struct DoctorCheck {
  std::string id;     // stable key, e.g. "platform_primary", "clock", "port"
  std::string title;  // e.g. "Platform (primary) https://app.dinodiasmartliving.com"
  Verdict verdict = Verdict::ok;
  std::string detail;  // what was found
  std::string action;  // what to do; empty when ok
};

struct DoctorReport {
  std::string at;  // ISO-8601, when the checks started
  std::vector<DoctorCheck> checks;
  std::size_t count(Verdict verdict) const;
  Verdict overall() const;  // the worst verdict
};

struct DoctorContext {
  Options options;
  Environment env;
  // The agent's state database; null when there is none (the agent never ran here).
  const StateStore* store = nullptr;
  // A running loop for the Home Assistant calls (the bridge's); null: run_doctor runs its own.
  boost::asio::io_context* io = nullptr;
  // True when this process itself listens on the configured port (the running agent).
  std::function<bool()> port_held_here;
  // The command line also tries a real pairing with the bootstrap secret (the running agent does
  // not: its sync cycle already does, and the pairing check reads the outcome).
  bool probe_pairing = false;
};

DoctorReport run_doctor(const DoctorContext& context);

// The verdicts that depend on one answer alone (unit-tested in tests/unit/doctor_test.cpp).
// `role` is "primary" or "canary"; `health` the answer to GET <origin>/api/health.
DoctorCheck platform_check(const std::string& role, const std::string& origin,
                           const platform_client::HttpResult& health);
// `offset_s` = platform time − hub time from a Date header of `origin`; nullopt: none arrived.
DoctorCheck clock_check(std::optional<std::int64_t> offset_s, const std::string& origin);

// One line per check, "<VERDICT> <title>: <detail>[ Action: <action>]", VERDICT being ok, WARN
// or FAIL; then a summary line.
std::vector<std::string> doctor_report_lines(const DoctorReport& report);
std::string doctor_summary(const DoctorReport& report);
// {"ok","verdict","at","counts":{"ok","warn","fail"},"checks":[{"id","title","verdict","detail",
// "action"}]}; `ok` is false when any check failed.
nlohmann::ordered_json doctor_report_json(const DoctorReport& report);

}  // namespace dinodia::agent
