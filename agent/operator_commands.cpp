#include "agent/operator_commands.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "agent/doctor.hpp"
#include "agent/options.hpp"
#include "agent/platform_origin.hpp"
#include "agent/state_store.hpp"
#include "common/clock.hpp"

namespace dinodia::agent {
namespace {

std::string when(std::int64_t ms) {
  return ms > 0 ? clock::iso8601_from_millis(ms) : "never";
}

std::string opt(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string("none");
}

// "<class> (HTTP n, backend b, n ms)[: error]": the same shape for the history and the
// per-origin lines.
std::string attempt_outcome(const SyncAttempt& a) {
  std::string out = a.status;
  out.append(" (HTTP ").append(std::to_string(a.http_status)).append(", backend ");
  out.append(a.backend.empty() ? std::string("-") : a.backend).append(", ");
  out.append(std::to_string(a.latency_ms)).append(" ms)");
  if (!a.error.empty()) out.append(": ").append(a.error);
  return out;
}

void print_attempt(const char* label, const std::optional<SyncAttempt>& a) {
  if (!a) {
    std::printf("  %s: none in the last %zu attempts\n", label, StateStore::kHistoryLimit);
    return;
  }
  std::printf("  %s: %s %s -> %s\n", label, when(a->at_ms).c_str(), a->operation.c_str(),
              attempt_outcome(*a).c_str());
}

}  // namespace

int run_status_command(const Environment& env) {
  const std::string path = StateStore::default_path(env.data_dir);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    std::printf("No state database at %s (the agent has not run here yet).\n", path.c_str());
    return 1;
  }
  try {
    StateStore store(path, /*read_only=*/true);
    auto pairing = store.pairing();
    TokenState state = store.token_state();
    std::printf("State database: %s (schema %d)\n", path.c_str(), store.schema_version());
    if (pairing) {
      std::printf("Paired: yes (serial %s, paired at %s via %s)\n", pairing->serial.c_str(),
                  pairing->paired_at.empty() ? "unknown" : pairing->paired_at.c_str(),
                  pairing->origin.empty() ? "unknown" : pairing->origin.c_str());
    } else {
      std::printf("Paired: no\n");
    }
    std::printf("agentSeenVersion: %lld  latestVersion: %s  publishedVersion: %s\n",
                static_cast<long long>(state.agent_seen_version), opt(state.latest_version).c_str(),
                opt(state.published_version).c_str());
    std::printf("Accepted hashes: %zu  last sync: %s\n", state.hashes.size(),
                state.last_sync_at.empty() ? "never" : state.last_sync_at.c_str());
    std::optional<Options> options;
    try {
      options = load_options_file(env.options_path).options;
      std::printf("Primary origin: %s\n", origin_of(options->platform_base_url).c_str());
      if (!options->platform_canary_base_url.empty()) {
        std::printf("Canary origin: %s\n", origin_of(options->platform_canary_base_url).c_str());
      }
    } catch (const std::exception& e) {
      std::printf("Options: invalid (%s)\n", e.what());
    }
    for (const auto& c : store.origin_counters()) {
      std::printf(
          "Origin %s: %lld ok, %lld failed, last backend %s, last success %s, last "
          "failure %s%s%s\n",
          c.origin.c_str(), static_cast<long long>(c.successes), static_cast<long long>(c.failures),
          c.last_backend.empty() ? "-" : c.last_backend.c_str(), when(c.last_success_ms).c_str(),
          when(c.last_failure_ms).c_str(),
          c.last_error.empty() ? "" : ", last error: ", c.last_error.c_str());
      // Where the origin's requests went and how the last one ended, with or without a Worker's
      // x-dinodia-api-backend (docs/platform-protocol.md#origins).
      std::printf("  role %s, host %s\n",
                  options ? origin_role(c.origin, options->platform_base_url,
                                        options->platform_canary_base_url)
                          : "unknown",
                  host_of(c.origin).c_str());
      print_attempt("last attempt", c.last_attempt);
      print_attempt("last failure", c.last_failed_attempt);
    }
    std::printf("Recent sync attempts (newest first):\n");
    for (const auto& a : store.recent_attempts(10)) {
      std::printf("  %s %s %s -> %s\n", when(a.at_ms).c_str(), a.operation.c_str(),
                  a.origin.c_str(), attempt_outcome(a).c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::printf("Cannot read the state database: %s\n", e.what());
    return 1;
  }
}

int run_doctor_command(const Environment& env) {
  DoctorContext context;
  context.env = env;
  context.probe_pairing = true;
  try {
    LoadedOptions loaded = load_options_file(env.options_path);
    context.options = loaded.options;
    for (const auto& w : loaded.warnings) std::printf("note: %s\n", w.c_str());
    std::printf("ok Options: valid (%s)\n", env.options_path.c_str());
  } catch (const std::exception& e) {
    std::printf("FAIL Options: %s. Action: correct that option on the Configuration tab.\n",
                e.what());
    return 1;
  }
  // The running agent's database, read-only as `status` reads it; none if it never ran here.
  const std::string path = StateStore::default_path(env.data_dir);
  std::unique_ptr<StateStore> store;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    try {
      store = std::make_unique<StateStore>(path, /*read_only=*/true);
    } catch (const std::exception& e) {
      std::printf("note: cannot read the state database: %s\n", e.what());
    }
  }
  context.store = store.get();
  const DoctorReport report = run_doctor(context);
  for (const auto& line : doctor_report_lines(report)) std::printf("%s\n", line.c_str());
  std::printf("%s\n", doctor_summary(report).c_str());
  return report.count(Verdict::fail) == 0 ? 0 : 1;
}

}  // namespace dinodia::agent
