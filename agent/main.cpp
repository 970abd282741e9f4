// dinodia-hub-agent: the Dinodia hub agent for Home Assistant (add-on process).
//   dinodia-hub-agent            run the agent (the add-on's container runs this)
//   dinodia-hub-agent --version  print the version
//   dinodia-hub-agent status     pairing, versions, origins, recent sync history (no network)
//   dinodia-hub-agent doctor     checks options, Supervisor, origins, clock, pairing
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "agent/agent.hpp"
#include "agent/environment.hpp"
#include "agent/operator_commands.hpp"
#include "common/log.hpp"
#include "common/process_limits.hpp"

int main(int argc, char** argv) {
  if (argc > 1 &&
      (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("dinodia-hub-agent %s\n", DINODIA_AGENT_VERSION);
    return 0;
  }
  if (argc == 2 && (std::strcmp(argv[1], "status") == 0 || std::strcmp(argv[1], "doctor") == 0)) {
    try {
      const auto env = dinodia::agent::read_environment();
      return std::strcmp(argv[1], "status") == 0 ? dinodia::agent::run_status_command(env)
                                                 : dinodia::agent::run_doctor_command(env);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    }
  }
  if (argc > 1) {
    std::fprintf(stderr, "usage: dinodia-hub-agent [--version | status | doctor]\n");
    return 2;
  }
  try {
    const auto env = dinodia::agent::read_environment();
    // First of all: restart once without glibc's per-thread caches
    // (docs/hostile-clients.md#memory-after-a-burst).
    if (const auto tunables =
            dinodia::process::allocator_tunables(env.glibc_tunables, env.preloaded)) {
      dinodia::process::restart_with_tunables(argv, *tunables);
    }
    return dinodia::agent::run_agent(env);
  } catch (const std::invalid_argument& e) {
    dinodia::log::error(std::string("Invalid environment: ") + e.what());
    return 2;
  } catch (const std::exception& e) {
    dinodia::log::error(std::string("Fatal: ") + e.what());
    return 1;
  }
}
