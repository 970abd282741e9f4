#pragma once
// Lifecycle: load options, restore durable state, open port 8099, run the platform sync, and
// on SIGTERM/SIGINT stop accepting, finish in-flight work within a few seconds, exit 0.
// Style: blocking threads (main: start-up, sigwait, shutdown; sync: sync_scheduler.hpp) and
// callbacks on the bridge's worker-0 loop (usage_tracker.hpp, zha_endpoints.hpp).
#include "agent/environment.hpp"

namespace dinodia::agent {

// Runs the agent until SIGTERM or SIGINT. Returns the process exit code: 0 after a clean stop,
// 2 for invalid options or environment, 1 when start-up fails (e.g. the port is taken).
int run_agent(const Environment& env);

}  // namespace dinodia::agent
