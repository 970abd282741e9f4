#pragma once
// The process environment the agent honours. These names are a convention that tools outside
// the repo (the add-on's container, tests, benchmarks) rely on; do not rename them.
#include <optional>
#include <string>

namespace dinodia::agent {

// DINODIA_BRIDGE_TIMEOUTS="idle=2,header=2,io=5,ws_auth=2,ws_ping=1,unauth_idle=1" (whole
// seconds, 1..3600, any subset, any order). Only tests set it: they cannot wait out the 65 s
// keep-alive idle time or the 30 s WebSocket ping interval. A home never needs it; the defaults in
// BridgeConfig are the documented behaviour.
struct BridgeTimeoutOverrides {
  std::optional<int> idle;         // BridgeConfig::idle_timeout
  std::optional<int> header;       // BridgeConfig::header_timeout
  std::optional<int> io;           // BridgeConfig::io_timeout
  std::optional<int> ws_auth;      // BridgeConfig::ws_auth_timeout
  std::optional<int> ws_ping;      // BridgeConfig::ws_ping_interval
  std::optional<int> unauth_idle;  // BridgeConfig::unauthenticated_idle_timeout
};

// DINODIA_BRIDGE_LIMITS="connections=8,per_address=4" (1..1000000, any subset). Only tests set
// it, to reach the connection limits with a few sockets; a home keeps BridgeConfig's defaults.
struct BridgeLimitOverrides {
  std::optional<int> connections;  // BridgeConfig::max_connections
  std::optional<int> per_address;  // BridgeConfig::max_connections_per_address
};

// Parses the DINODIA_BRIDGE_TIMEOUTS value. Throws std::invalid_argument naming the variable and
// the offending key or value.
BridgeTimeoutOverrides parse_bridge_timeouts(const std::string& value);
// The same for DINODIA_BRIDGE_LIMITS.
BridgeLimitOverrides parse_bridge_limits(const std::string& value);

struct Environment {
  std::string options_path = "/data/options.json";   // DINODIA_OPTIONS_PATH
  std::string data_dir = "/data";                    // DINODIA_DATA_DIR
  std::string supervisor_url = "http://supervisor";  // DINODIA_SUPERVISOR_URL
  std::string supervisor_token;                      // SUPERVISOR_TOKEN (HASSIO_TOKEN fallback)
  std::optional<int> sync_interval_seconds;          // DINODIA_SYNC_INTERVAL_SECONDS (tests only)
  // DINODIA_TELEMETRY_POLL_SECONDS (1..86400, tests only): replaces both usage poll intervals so a
  // test can watch the poll loop; a home keeps the options' 60..3600 s.
  std::optional<int> telemetry_poll_seconds;
  // DINODIA_DOCTOR_REPORT_SECONDS (1..86400, tests only): the least time between two doctor
  // reports logged after failed sync cycles; a home keeps 30 minutes (agent/doctor_reporter.hpp).
  std::optional<int> doctor_report_seconds;
  // DINODIA_SETTLE_SECONDS (1..86400, tests and benchmarks only): how long after the port opens
  // the agent counts as settled and gives back the code pages it ran only to start
  // (common/code_pages.hpp); a home keeps kSettleAfterStart (agent/agent.cpp).
  std::optional<int> settle_seconds;
  // The legacy agent's files, when they are not at the default places under data_dir:
  std::optional<std::string> token_state_path;           // DINODIA_TOKEN_STATE_PATH
  std::optional<std::string> heating_usage_state_path;   // DINODIA_HEATING_USAGE_STATE_PATH
  std::optional<std::string> electric_usage_state_path;  // DINODIA_ELECTRIC_USAGE_STATE_PATH
  std::optional<std::string> bind_address;               // DINODIA_BIND_ADDRESS (tests, benchmarks)
  BridgeTimeoutOverrides bridge_timeouts;                // DINODIA_BRIDGE_TIMEOUTS (tests only)
  BridgeLimitOverrides bridge_limits;                    // DINODIA_BRIDGE_LIMITS (tests only)
  // Read for the allocator set-up at start (common/process_limits.hpp, allocator_tunables):
  std::optional<std::string> glibc_tunables;  // GLIBC_TUNABLES
  bool preloaded = false;                     // LD_PRELOAD is set (valgrind, heaptrack)
};

// Reads the variables above. Throws std::invalid_argument naming the variable on a bad value.
Environment read_environment();

}  // namespace dinodia::agent
