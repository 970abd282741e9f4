// bench_fleet_sim: the fleet simulation of bench/fleet_sim.hpp from the command line; prints the
// results table of bench/README.md#fleet-simulation.
//   bench_fleet_sim [--hubs N] [--seed S] [--scenario primary|canary|skew|all]
//                   [--policy legacy|agent|all] [--csv FILE]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "bench/fleet_sim.hpp"

namespace fs = dinodia::fleet_sim;

namespace {

// The agent's targets: after the recovery at most twice the steady rate in any 10 s
// window, every hub synced within two regular intervals (2 x 120 s), no client token refused, no
// nonce reused.
constexpr double kPeakTarget = 2.0;
constexpr double kSyncedTargetS = 240.0;

std::string ratio(const fs::Report& r, double rps) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f (%.2f×)", rps, r.ratio(rps));
  return buf;
}

std::string seconds(const std::optional<double>& s, std::int64_t missing) {
  if (!s) return "never (" + std::to_string(missing) + " hubs)";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f s", *s);
  return buf;
}

std::string synced(const fs::Report& r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, " (mean %.0f s)", r.mean_synced_after_s);
  return seconds(r.all_synced_after_s, r.hubs_not_synced) + buf;
}

std::string verdict(const fs::Report& r) {
  std::vector<std::string> missed;
  if (r.ratio(r.after_peak_rps) > kPeakTarget) missed.push_back("peak");
  if (!r.all_synced_after_s || *r.all_synced_after_s > kSyncedTargetS) missed.push_back("synced");
  if (r.published_token_rejections != 0) missed.push_back("tokens");
  if (r.nonce_reuses != 0) missed.push_back("nonces");
  if (r.cycle_exceptions != 0) missed.push_back("exceptions");
  if (missed.empty()) return "all met";
  std::string out = "missed:";
  for (const auto& m : missed) out += " " + m;
  return out;
}

void print_row(const fs::Report& r) {
  std::printf(
      "| %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %lld / %lld | %lld | %lld | %lld | %.1f | "
      "%s |\n",
      fs::to_string(r.config.scenario), fs::to_string(r.config.policy), r.steady_rps,
      ratio(r, r.outage_mean_rps).c_str(), ratio(r, r.outage_peak_rps).c_str(),
      ratio(r, r.after_peak_rps).c_str(), ratio(r, r.after_mean_rps).c_str(), synced(r).c_str(),
      r.config.scenario == fs::Scenario::canary_outage ? seconds(r.canary_back_after_s, 0).c_str()
                                                       : "—",
      static_cast<long long>(r.published_token_rejections),
      static_cast<long long>(r.token_publications), static_cast<long long>(r.nonce_reuses),
      static_cast<long long>(r.requests), static_cast<long long>(r.failed_cycles), r.wall_seconds,
      verdict(r).c_str());
  std::fflush(stdout);
}

void write_csv(std::ofstream& out, const fs::Report& r) {
  for (const auto& w : r.windows) {
    out << fs::to_string(r.config.scenario) << ',' << fs::to_string(r.config.policy) << ','
        << w.start_s << ',' << w.primary << ',' << w.canary << '\n';
  }
}

[[noreturn]] void usage() {
  std::cerr << "usage: bench_fleet_sim [--hubs N] [--seed S] [--scenario primary|canary|skew|all]"
               " [--policy legacy|agent|all] [--csv FILE]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  fs::Config base;
  std::string scenario = "all", policy = "all", csv;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage();
    const std::string value = argv[++i];
    if (arg == "--hubs") {
      base.hubs = std::atoi(value.c_str());
    } else if (arg == "--seed") {
      base.seed = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--scenario") {
      scenario = value;
    } else if (arg == "--policy") {
      policy = value;
    } else if (arg == "--csv") {
      csv = value;
    } else {
      usage();
    }
  }
  if (base.hubs <= 0) usage();
  std::vector<fs::Scenario> scenarios;
  if (scenario == "primary" || scenario == "all") scenarios.push_back(fs::Scenario::primary_outage);
  if (scenario == "canary" || scenario == "all") scenarios.push_back(fs::Scenario::canary_outage);
  if (scenario == "skew" || scenario == "all") scenarios.push_back(fs::Scenario::clock_skew);
  std::vector<fs::Policy> policies;
  if (policy == "legacy" || policy == "all") policies.push_back(fs::Policy::legacy);
  if (policy == "agent" || policy == "all") policies.push_back(fs::Policy::agent);
  if (scenarios.empty() || policies.empty()) usage();

  std::ofstream csv_out;
  if (!csv.empty()) {
    csv_out.open(csv);
    csv_out << "scenario,policy,window_start_s,primary_requests,canary_requests\n";
  }
  std::printf(
      "%d hubs, seed %llu; outage %llds at t=%llds (%llds timeouts, then 503s); rates over %llds "
      "windows, × = relative to the steady rate before the outage\n\n",
      base.hubs, static_cast<unsigned long long>(base.seed), static_cast<long long>(base.outage_s),
      static_cast<long long>(base.outage_start_s), static_cast<long long>(base.timeout_phase_s),
      static_cast<long long>(base.window_s));
  std::printf(
      "| scenario | policy | steady req/s | outage mean | outage peak | after-recovery peak | "
      "first 5 min after | all hubs synced after recovery | canary hubs back on the canary | "
      "client tokens refused / tokens published | nonces reused | requests | failed cycles | "
      "wall s | targets |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (fs::Scenario s : scenarios) {
    for (fs::Policy p : policies) {
      if (s == fs::Scenario::canary_outage && p == fs::Policy::legacy) {
        std::printf(
            "| %s | legacy | 0.4.17 has no canary origin: its hubs sync to the primary "
            "only, which this outage leaves alone |||||||||||||\n",
            fs::to_string(s));
        continue;
      }
      fs::Config config = base;
      config.scenario = s;
      config.policy = p;
      const fs::Report report = fs::run(config);
      print_row(report);
      if (csv_out.is_open()) write_csv(csv_out, report);
    }
  }
  return 0;
}
