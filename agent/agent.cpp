#include "agent/agent.hpp"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>

#include "agent/local_endpoints.hpp"
#include "agent/options.hpp"
#include "common/log.hpp"
#include "ha_bridge/bridge.hpp"
#include "ha_bridge/token_registry.hpp"

namespace dinodia::agent {
namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(4000);

ha_bridge::BridgeConfig bridge_config(const Options& o, const Environment& env) {
  ha_bridge::BridgeConfig c;
  c.port = static_cast<std::uint16_t>(o.port);
  if (env.bind_address) c.bind_address = *env.bind_address;
  c.upstream = ha_bridge::parse_upstream_url(env.supervisor_url);
  c.supervisor_token = env.supervisor_token;
  c.upstream_ws_tokens = o.upstream_ws_tokens(env.supervisor_token);
  c.allowed_path_regex = o.allowed_path_regex;
  c.max_body_bytes = static_cast<std::size_t>(o.max_request_body_mb) * 1024 * 1024;
  return c;
}

// Blocks SIGTERM/SIGINT in every thread (threads inherit the mask) so that only sigwait in the
// main thread sees them. SIGPIPE is ignored: a client that vanishes mid-write is an error code.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace

int run_agent(const Environment& env) {
  const sigset_t stop_signals = block_stop_signals();

  LoadedOptions loaded;
  try {
    loaded = load_options_file(env.options_path);
  } catch (const OptionsError& e) {
    log::error(std::string("Invalid options: ") + e.what());
    return 2;
  }
  const Options& options = loaded.options;
  log::set_level(log::parse_level(options.log_level));
  for (const auto& w : loaded.warnings) log::warn(w);
  if (env.supervisor_token.empty()) {
    log::warn("SUPERVISOR_TOKEN is missing; HTTP proxy to supervisor/core will fail.");
  }

  auto tokens = std::make_shared<ha_bridge::TokenRegistry>();
  if (std::size_t bad = tokens->set_local(options.hub_tokens, options.hub_token_hashes); bad > 0) {
    log::warn("Ignoring hub_token_hashes entries that are not SHA-256 hex",
              log::Fields().add("count", bad));
  }

  std::unique_ptr<ha_bridge::LanBridge> bridge;
  try {
    bridge = std::make_unique<ha_bridge::LanBridge>(bridge_config(options, env), tokens,
                                                    local_routes(options, *tokens));
    bridge->start();
  } catch (const std::invalid_argument& e) {
    log::error(std::string("Invalid configuration: ") + e.what());
    return 2;
  } catch (const std::exception& e) {
    log::error(std::string("Could not start the LAN bridge: ") + e.what());
    return 1;
  }
  log::info("Listening", log::Fields().add("port", static_cast<int>(bridge->bound_port())));

  int received = 0;
  sigwait(&stop_signals, &received);
  log::info("Stopping", log::Fields().add("signal", received == SIGTERM ? "SIGTERM" : "SIGINT"));
  bridge->stop(kShutdownGrace);
  log::info("Stopped");
  return 0;
}

}  // namespace dinodia::agent
