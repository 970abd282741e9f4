#include "agent/operator_commands.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "agent/options.hpp"
#include "agent/platform_origin.hpp"
#include "agent/state_store.hpp"
#include "common/clock.hpp"
#include "common/text.hpp"
#include "platform_client/hub_signer.hpp"
#include "platform_client/platform_api.hpp"
#include "platform_client/transport.hpp"
#include "platform_client/url.hpp"

namespace dinodia::agent {
namespace pc = platform_client;
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
  int problems = 0;
  auto problem = [&problems](const std::string& line) {
    ++problems;
    std::printf("PROBLEM: %s\n", line.c_str());
  };
  auto ok = [](const std::string& line) { std::printf("ok: %s\n", line.c_str()); };

  Options options;
  try {
    LoadedOptions loaded = load_options_file(env.options_path);
    options = loaded.options;
    for (const auto& w : loaded.warnings) std::printf("note: %s\n", w.c_str());
    ok("options are valid (" + env.options_path + ")");
  } catch (const std::exception& e) {
    problem(std::string("options: ") + e.what());
    return 1;
  }

  auto transport = pc::make_http_transport(pc::TransportOptions{});
  // Supervisor: GET <supervisor>/core/api/ with the token.
  if (env.supervisor_token.empty()) {
    problem("SUPERVISOR_TOKEN is not set: the bridge cannot reach Home Assistant");
  } else {
    pc::TransportOptions supervisor_options;
    supervisor_options.connect_timeout = std::chrono::seconds(5);
    supervisor_options.total_timeout = std::chrono::seconds(10);
    std::string base = env.supervisor_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    pc::HttpResult r =
        pc::get_with_bearer_token(base + "/core/api/", env.supervisor_token, supervisor_options);
    if (r.status == 0) {
      problem("Supervisor unreachable at " + env.supervisor_url + " (" + r.error + ")");
    } else if (r.status == 401 || r.status == 403) {
      problem("Supervisor rejects SUPERVISOR_TOKEN (HTTP " + std::to_string(r.status) +
              "): check homeassistant_api in the add-on config");
    } else if (r.status >= 200 && r.status < 300) {
      ok("Supervisor and Home Assistant Core answer at " + env.supervisor_url);
    } else {
      problem("Supervisor answered HTTP " + std::to_string(r.status) + " for /core/api/");
    }
  }

  const std::string serial(text::trim(options.hub_agent_id));
  const std::string bootstrap(text::trim(options.hub_agent_secret));
  if (!options.platform_sync_enabled) std::printf("note: platform_sync_enabled is false\n");
  if (serial.empty()) problem("hub_agent_id (the hub serial) is empty: set it in the options");
  if (bootstrap.empty()) {
    problem("hub_agent_secret (bootstrap secret) is empty: pairing is impossible");
  }

  std::vector<std::pair<std::string, std::string>> origins{{"primary", options.platform_base_url}};
  if (!options.platform_canary_base_url.empty()) {
    origins.emplace_back("canary", options.platform_canary_base_url);
  }
  // One report line per origin (at most two), printed once for an operator: `+` reads best.
  // NOLINTBEGIN(performance-inefficient-string-concatenation)
  for (const auto& [role, base] : origins) {
    const std::string origin = origin_of(base);
    if (!pc::parse_url(base)) {
      problem(role + " origin '" + base + "' is not an http(s) URL");
      continue;
    }
    pc::HttpResult health = transport->get(origin + "/api/health");
    if (health.status == 0) {
      problem(role + " origin " + origin + " unreachable (" + health.error +
              "): check DNS, network and TLS certificates");
      continue;
    }
    ok(role + " origin " + origin + " reachable (GET /api/health: HTTP " +
       std::to_string(health.status) +
       (health.backend.empty() ? "" : ", backend " + health.backend) + ")");
    std::int64_t offset = 0;
    if (health.date_unix) {
      offset = *health.date_unix - clock::unix_seconds();
      if (std::llabs(offset) > 240) {
        problem("hub clock is off by " + std::to_string(std::llabs(offset)) + " s (" +
                (offset > 0 ? "behind " : "ahead of ") + origin +
                "): fix NTP; the platform rejects signatures more than 300 s off");
      } else {
        ok("clock offset to " + origin + ": " + std::to_string(offset) + " s");
      }
    }
    if (serial.empty() || bootstrap.empty()) continue;
    pc::PlatformApi api(*transport);
    pc::PairResult pr = api.pair(pc::pair_url(base), pc::HubSigner::sign_now(serial, bootstrap));
    switch (pr.failure) {
      case pc::Failure::none:
        ok("pairing with " + origin + " works");
        break;
      case pc::Failure::unknown_serial:
        problem("wrong serial: " + origin + " does not know hub_agent_id '" + serial + "'");
        break;
      case pc::Failure::bad_signature:
        problem(std::llabs(offset) > 240
                    ? "pairing rejected by " + origin + ": fix the hub clock first"
                    : "wrong bootstrap secret: " + origin +
                          " rejects hub_agent_secret (clock is fine)");
        break;
      default:
        problem("pairing with " + origin + " failed: " + pr.message);
    }
  }
  // NOLINTEND(performance-inefficient-string-concatenation)
  std::printf(problems == 0 ? "All checks passed.\n" : "%d problem(s) found.\n", problems);
  return problems == 0 ? 0 : 1;
}

}  // namespace dinodia::agent
