#include "agent/agent.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "agent/doctor.hpp"
#include "agent/doctor_endpoint.hpp"
#include "agent/doctor_reporter.hpp"
#include "agent/legacy_token_state.hpp"
#include "agent/local_endpoints.hpp"
#include "agent/options.hpp"
#include "agent/platform_sync.hpp"
#include "agent/relief_events.hpp"
#include "agent/rest_shims.hpp"
#include "agent/state_store.hpp"
#include "agent/sync_scheduler.hpp"
#include "agent/sync_status_endpoint.hpp"
#include "agent/telemetry_service.hpp"
#include "agent/token_stores.hpp"
#include "agent/zha_endpoints.hpp"
#include "common/code_pages.hpp"
#include "common/log.hpp"
#include "common/process_limits.hpp"
#include "common/text.hpp"
#include "ha_bridge/bridge.hpp"
#include "ha_bridge/token_registry.hpp"
#include "platform_client/transport.hpp"

namespace dinodia::agent {
namespace {

constexpr auto kShutdownGrace = std::chrono::milliseconds(4000);
// With no stored hashes and sync enabled, pair before serving platform tokens
// (docs/platform-protocol.md#rotation), but never keep port 8099 closed longer than this.
constexpr auto kInitialSyncWait = std::chrono::seconds(20);
constexpr auto kSyncStopWait = std::chrono::seconds(3);
// The least time between two doctor reports logged after failed sync cycles. A failing hub
// fails a cycle every 2 minutes or more often (back-off, docs/platform-protocol.md#errors) and
// logs `Platform sync failed` each time; a report (about ten lines) every 30 minutes keeps one
// within the last half hour of the log, that is among the last screenful the Log tab shows,
// while a day-long outage adds at most 48 reports instead of hundreds.
constexpr auto kDoctorFailureReportInterval = std::chrono::minutes(30);
constexpr auto kDoctorStopWait = std::chrono::milliseconds(200);
// Pairing, the first cycles, the trackers' seeding and the start-up doctor are over by then
// (each takes seconds); the code only they ran is given back (common/code_pages.hpp).
constexpr auto kSettleAfterStart = std::chrono::minutes(5);

// Blocks until SIGTERM or SIGINT and returns it. Once `settle` has passed without one, gives back
// the code pages only start-up used (common/code_pages.hpp) and waits on.
int wait_for_stop_signal(const sigset_t& stop_signals, std::chrono::seconds settle) {
  const timespec timeout{static_cast<time_t>(settle.count()), 0};
  int received = sigtimedwait(&stop_signals, nullptr, &timeout);
  if (received > 0) return received;
  const std::size_t released = process::release_file_pages();
  log::info("Settled: start-up code pages given back", log::Fields().add("kib", released));
  received = 0;
  sigwait(&stop_signals, &received);
  return received;
}

// The Supervisor address and credentials come from `ha`, built once for every part that calls
// Home Assistant.
ha_bridge::BridgeConfig bridge_config(const Options& o, const Environment& env,
                                      const ha_client::HaClientConfig& ha) {
  ha_bridge::BridgeConfig c;
  c.port = static_cast<std::uint16_t>(o.port);
  if (env.bind_address) c.bind_address = *env.bind_address;
  c.upstream = ha.upstream;
  c.supervisor_token = ha.supervisor_token;
  c.upstream_ws_tokens = ha.ws_tokens;
  c.allowed_path_regex = o.allowed_path_regex;
  c.max_body_bytes = static_cast<std::size_t>(o.max_request_body_mb) * 1024 * 1024;
  c.allow_hassio_domain = o.allow_hassio_domain;
  c.kiosk_relief = o.kiosk_relief;
  c.kiosk_relief_window = std::chrono::milliseconds(o.kiosk_relief_window_ms);
  const auto& t = env.bridge_timeouts;
  if (t.idle) c.idle_timeout = std::chrono::seconds(*t.idle);
  if (t.header) c.header_timeout = std::chrono::seconds(*t.header);
  if (t.io) c.io_timeout = std::chrono::seconds(*t.io);
  if (t.ws_auth) c.ws_auth_timeout = std::chrono::seconds(*t.ws_auth);
  if (t.ws_ping) c.ws_ping_interval = std::chrono::seconds(*t.ws_ping);
  if (t.unauth_idle) c.unauthenticated_idle_timeout = std::chrono::seconds(*t.unauth_idle);
  const auto& l = env.bridge_limits;
  if (l.connections) c.max_connections = static_cast<std::size_t>(*l.connections);
  if (l.per_address) c.max_connections_per_address = static_cast<std::size_t>(*l.per_address);
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
  // Before any thread starts: the descriptors a LAN full of clients needs, and an allocator that
  // can give a burst's memory back (docs/hostile-clients.md).
  process::tune_allocator();
  if (const auto files = process::raise_descriptor_limit(); files.after != files.before) {
    log::info("Open files limit raised",
              log::Fields().add("from", files.before).add("to", files.after));
  }
  for (const auto& w : loaded.warnings) log::warn(w);
  if (env.supervisor_token.empty()) {
    log::warn("SUPERVISOR_TOKEN is missing; HTTP proxy to supervisor/core will fail.");
  }

  auto tokens = std::make_shared<ha_bridge::TokenRegistry>();
  if (std::size_t bad = tokens->set_local(options.hub_tokens, options.hub_token_hashes); bad > 0) {
    log::warn("Ignoring hub_token_hashes entries that are not SHA-256 hex",
              log::Fields().add("count", bad));
  }

  // Durable state before the port opens: the hashes a client may hold must be accepted from
  // the first request on.
  std::unique_ptr<StateStore> store;
  std::unique_ptr<LegacyTokenStateFile> legacy_file;
  try {
    store = std::make_unique<StateStore>(StateStore::default_path(env.data_dir));
    legacy_file = std::make_unique<LegacyTokenStateFile>(legacy_token_state_path(env), *store);
    const std::string serial(text::trim(options.hub_agent_id));
    const bool imported = legacy_file->import_if_new(serial);
    const StoredTokens stored =
        TokenStores(*store, legacy_file.get(), *tokens).serve_stored(imported);
    log::info("Loaded cached token state",
              log::Fields()
                  .add("agentSeenVersion", stored.state.agent_seen_version)
                  .add("hashes", stored.state.hashes.size())
                  .add("hasSyncSecret", stored.has_sync_secret));
  } catch (const std::exception& e) {
    log::error(
        "Could not open the agent state",
        log::Fields().add("path", StateStore::default_path(env.data_dir)).add("error", e.what()));
    return 1;
  }

  // Declared before the telemetry service on purpose: the service's timers and its Home
  // Assistant connection live on the bridge's io_context, so on every return path the service
  // must be destroyed first (reverse declaration order). AddressSanitizer found the opposite
  // order using freed memory at shutdown.
  std::unique_ptr<ha_bridge::LanBridge> bridge;
  std::shared_ptr<TelemetryService> telemetry;  // built with the bridge, whose loop it uses
  // The kiosk relief's event stream, on the bridge's loop too; only when answers may be served
  // from memory (docs/lan-bridge.md#kiosk-relief).
  std::shared_ptr<ReliefEvents> relief_events;
  std::atomic<bool> bridge_listening{false};
  // The doctor runs on its own thread with the bridge's loop for its Home Assistant calls; it is
  // stopped before the bridge (addon/DOCS.md#installer-diagnostics).
  DoctorReporter doctor(
      [&options, &env, store = store.get(), &bridge, &bridge_listening]() {
        DoctorContext context;
        context.options = options;
        context.env = env;
        context.store = store;
        context.io = &bridge->io_context();
        context.port_held_here = [&bridge_listening] { return bridge_listening.load(); };
        return run_doctor(context);
      },
      env.doctor_report_seconds
          ? std::chrono::milliseconds(std::int64_t{*env.doctor_report_seconds} * 1000)
          : std::chrono::milliseconds(kDoctorFailureReportInterval));
  auto doctor_json = [&doctor](std::function<void(nlohmann::ordered_json)> reply) {
    doctor.request([reply = std::move(reply)](const DoctorReport& report) {
      reply(doctor_report_json(report));
    });
  };
  auto sync_status = [&options, store = store.get(), tokens, &telemetry, &bridge]() {
    const nlohmann::json electric = telemetry ? telemetry->status_json() : nlohmann::json();
    auto status = sync_status_json(options, store, *tokens, telemetry ? &electric : nullptr);
    if (bridge) status["kioskRelief"] = kiosk_relief_status_json(options, *bridge);
    return status;
  };

  try {
    auto routes = local_routes(options, sync_status);
    routes.push_back(doctor_route(options.sync_status_token, doctor_json));
    // Built once: the Zigbee routes and the telemetry service reach HA the same way.
    const ha_client::HaClientConfig ha = ha_client_config(options, env);
    auto zha = zha_routes(tokens, ha,
                          [&bridge]() -> boost::asio::io_context& { return bridge->io_context(); });
    routes.insert(routes.end(), zha.begin(), zha.end());
    // Home Assistant paths the apps call that Home Assistant does not have; the bridge admits
    // them as relayed paths (docs/lan-bridge.md#rest-shims).
    auto shims = rest_shim_routes(
        ha, [&bridge]() -> boost::asio::io_context& { return bridge->io_context(); });
    routes.insert(routes.end(), shims.begin(), shims.end());
    bridge = std::make_unique<ha_bridge::LanBridge>(bridge_config(options, env, ha), tokens,
                                                    std::move(routes));
    telemetry = make_telemetry_service(options, env, ha, bridge->io_context());
    if (options.kiosk_relief && options.kiosk_relief_window_ms > 0) {
      relief_events = make_relief_events(
          bridge->io_context(), ha, bridge->relief_signals(),
          [&bridge](std::string_view greeting) { bridge->remember_ha_greeting(greeting); });
    }
  } catch (const std::invalid_argument& e) {
    log::error(std::string("Invalid configuration: ") + e.what());
    return 2;
  }

  std::unique_ptr<platform_client::Transport> transport;
  std::unique_ptr<PlatformSync> sync;
  std::unique_ptr<SyncScheduler> scheduler;
  bool scheduler_running = false;
  if (options.platform_sync_enabled) {
    transport = platform_client::make_http_transport(platform_client::TransportOptions{});
    SyncSettings settings;
    settings.serial = std::string(text::trim(options.hub_agent_id));
    settings.bootstrap_secret = std::string(text::trim(options.hub_agent_secret));
    settings.primary_base_url = options.platform_base_url;
    settings.canary_base_url = options.platform_canary_base_url;
    settings.token_state_endpoint = options.platform_token_state_endpoint;
    sync = std::make_unique<PlatformSync>(settings, *store, legacy_file.get(), *tokens, *transport,
                                          telemetry->contributors());
    scheduler = std::make_unique<SyncScheduler>(
        *sync,
        schedule_settings(options.platform_sync_interval_minutes, env.sync_interval_seconds));
    scheduler->set_cycle_observer([&doctor, first = true](const CycleResult& result) mutable {
      if (std::exchange(first, false)) doctor.first_sync_finished();
      if (result.outcome != CycleOutcome::ok) doctor.sync_failed();
    });
    if (tokens->synced_count() == 0) {
      // State lost or first install: pair (idempotent, returns the current hashes) first. The
      // telemetry service has not started, yet this cycle's token-state already carries the LAN
      // address and the areas (agent/ha_sync_fetches.hpp): it publishes the apps' first token,
      // and without the address the platform would hand them the one the installer typed, which
      // they cache (docs/compatibility.md#first-cycle).
      scheduler->start(std::chrono::milliseconds(0));
      scheduler_running = true;
      if (!scheduler->wait_first_cycle(kInitialSyncWait)) {
        log::warn("Initial platform sync is taking long; serving with local tokens meanwhile");
      }
    }
  } else {
    log::info("Platform sync disabled");
  }

  try {
    bridge->start();
  } catch (const std::invalid_argument& e) {
    // DINODIA_BIND_ADDRESS that is not an IP: a configuration error, as a bad option is.
    log::error(std::string("Invalid configuration: ") + e.what());
    return 2;
  } catch (const std::exception& e) {
    log::error(std::string("Could not start the LAN bridge: ") + e.what());
    return 1;
  }
  telemetry->start();
  if (relief_events) relief_events->start();
  log::info("Listening", log::Fields().add("port", static_cast<int>(bridge->bound_port())));
  bridge_listening = true;
  doctor.start();
  doctor.bridge_listening();
  if (!scheduler) doctor.first_sync_finished();  // no sync to wait for
  if (scheduler && !scheduler_running) {
    scheduler->start();
  }

  int received = wait_for_stop_signal(
      stop_signals, env.settle_seconds
                        ? std::chrono::seconds(*env.settle_seconds)
                        : std::chrono::duration_cast<std::chrono::seconds>(kSettleAfterStart));
  log::info("Stopping", log::Fields().add("signal", received == SIGTERM ? "SIGTERM" : "SIGINT"));
  const bool sync_stopped = !scheduler || scheduler->stop(kSyncStopWait);
  // The doctor writes nothing, so a report in progress (up to kDoctorTotalTimeout) is not waited
  // for: the process exits below without it.
  const bool doctor_stopped = doctor.stop(kDoctorStopWait);
  telemetry->stop();  // flushes usage state
  if (relief_events) relief_events->stop();
  if (!sync_stopped || !doctor_stopped) {
    // A platform request is still in flight (bounded by its own timeout). Every state change is
    // a committed SQLite transaction, so leaving now loses nothing.
    bridge->stop(kShutdownGrace);
    log::info("Stopped");
    std::fflush(stdout);
    std::_Exit(0);
  }
  bridge->stop(kShutdownGrace);
  log::info("Stopped");
  return 0;
}

}  // namespace dinodia::agent
