// dinodia-hub-agent: the Dinodia hub agent for Home Assistant (add-on process).
//   dinodia-hub-agent            run the agent (the add-on's container runs this)
//   dinodia-hub-agent --version  print the version
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "agent/agent.hpp"
#include "agent/environment.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("dinodia-hub-agent %s\n", DINODIA_AGENT_VERSION);
    return 0;
  }
  if (argc > 1) {
    std::fprintf(stderr, "usage: dinodia-hub-agent [--version]\n");
    return 2;
  }
  try {
    return dinodia::agent::run_agent(dinodia::agent::read_environment());
  } catch (const std::invalid_argument& e) {
    dinodia::log::error(std::string("Invalid environment: ") + e.what());
    return 2;
  } catch (const std::exception& e) {
    dinodia::log::error(std::string("Fatal: ") + e.what());
    return 1;
  }
}
