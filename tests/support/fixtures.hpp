#pragma once
// Fixtures the integration tests share: fake_ha, fake_platform and the agent started as real
// processes, with the calls tests make on them; the no-secret-in-logs check; raw HTTP response
// parsing; polling. They use Catch2 assertions (REQUIRE on a failed start), so call them from
// inside a TEST_CASE.
#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace dinodia::testing {

class WsClient;

using EnvMap = std::map<std::string, std::string>;

// A loopback port nothing listens on right now (options that need a concrete port, a dead
// upstream).
int free_loopback_port();

// Polls `condition` every `step` until it holds or `timeout` passes, then asks once more. Like
// every wait of a process or its log, `timeout` is scaled under emulation (time_scale.hpp).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = 50ms);

// One-shot requests to 127.0.0.1:port (connect 5 s, read 10 s).
httplib::Result http_get(int port, const std::string& path, const httplib::Headers& headers = {});
httplib::Result http_post_json(int port, const std::string& path, const nlohmann::json& body);

// Parts of a raw HTTP/1.1 response as RawSocket reads it.
int status_of(const std::string& raw);           // 0 unless it starts with "HTTP/1.1 "
std::string body_of(const std::string& raw);     // after the header block; "" without one
long content_length_of(const std::string& raw);  // -1 when the header is absent

// CHECKs that no secret occurs in `text`; a failure names `where` and the secret's first
// characters only.
void check_no_secrets(const std::string& text, const std::vector<std::string>& secrets,
                      const std::string& where = "log");

// Connects to the agent's /api/websocket and REQUIREs the legacy handshake: auth_required,
// auth with `token`, auth_ok.
void ws_authenticate(WsClient& client, std::uint16_t port, const std::string& token);

// A Home Assistant state_changed event (as the WebSocket API sends it) carrying `new_state`,
// fired at `fired_ms` (Unix milliseconds); for the stand-in's /_fake/event.
nlohmann::json state_changed_event(const nlohmann::json& new_state, std::int64_t fired_ms);

// Agent options: LAN bridge only (port 0, one plain hub token, usage tracking off).
nlohmann::json lan_agent_options(const std::string& hub_token);
// Agent options: platform sync against `base_url` (port 0, usage tracking off).
nlohmann::json sync_agent_options(const std::string& serial, const std::string& bootstrap_secret,
                                  const std::string& status_token, const std::string& base_url);
// Environment for a 1-second sync cycle with no legacy token-state path override.
EnvMap fast_sync_env();

// fake_ha (Supervisor + Core stand-in) on a free port; its log is fake_ha.log in `dir`.
class FakeHaProcess {
 public:
  // `entities`: --entities N; 0 leaves the fake's default.
  FakeHaProcess(const TempDir& dir, std::string supervisor_token, int entities = 0);

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *proc_; }
  // A client to the fake itself (connect 5 s, read 10 s).
  httplib::Client client() const;
  // POST to a control endpoint (/_fake/core?running=0, /_fake/fault?..., /_fake/reset);
  // REQUIREs 200.
  void control(const std::string& path_and_query) const;
  // POST a JSON body to a control endpoint (/_fake/set, /_fake/event); REQUIREs 200 and returns
  // the parsed answer.
  nlohmann::json post(const std::string& path, const nlohmann::json& body) const;
  nlohmann::json stats() const;     // GET /_fake/stats
  nlohmann::json requests() const;  // GET /_fake/requests: every REST request the fake received
  // The recorded requests whose target starts with `prefix`.
  std::vector<nlohmann::json> requests_to(const std::string& prefix) const;
  // One command on the fake's own WebSocket (not through the agent), e.g. fake/received.
  nlohmann::json ws_command(nlohmann::json command) const;

 private:
  nlohmann::json get_json(const std::string& path) const;
  std::string token_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

struct FakePlatformOptions {
  std::string backend = "vercel";  // the first listener's backend; "" names none
  bool second_listener = false;    // a second listener with backend aws
  std::vector<std::string> extra_args;
};

// fake_platform with one hub provisioned (serial + bootstrap secret); log platform.log in `dir`.
class FakePlatformProcess {
 public:
  FakePlatformProcess(const TempDir& dir, std::string serial, const std::string& bootstrap_secret,
                      FakePlatformOptions options = {});

  int port(int listener = 1) const { return listener == 1 ? port_ : port2_; }
  std::string url(int listener = 1) const;
  Process& process() { return *proc_; }
  nlohmann::json state() const;  // GET /_fake/state for the hub; REQUIREs an answer
  // The same, but null instead of a failed REQUIRE (for polling loops).
  nlohmann::json state_if_available() const;
  nlohmann::json hub() const { return state().at("hub"); }
  // Every token-state body the platform still remembers (its last 50), oldest first.
  std::vector<nlohmann::json> token_state_bodies() const;
  // Fails the test if the platform's validator dropped or refused any telemetry (heating and
  // electric rows, LAN address, area snapshot) in the latest request.
  void check_no_telemetry_drops() const;
  // The token home-mode/secrets would hand a client right now, if one is published.
  std::optional<std::string> published_token() const;
  // POST /_fake/failure: `listener` 0 means both, `seconds` 0 the mode's default.
  void failure(const std::string& mode, int listener = 0, int seconds = 0) const;
  // POST a JSON body to a control endpoint; REQUIREs 200.
  void control(const std::string& path, const nlohmann::json& body) const;
  void check_no_duplicate_nonces() const;

 private:
  std::string serial_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int port2_ = 0;
};

struct AgentSetup {
  std::string data_dir;          // DINODIA_DATA_DIR
  std::string files_dir;         // options.json and agent-N.log; "" = data_dir
  std::string supervisor_url;    // DINODIA_SUPERVISOR_URL
  std::string supervisor_token;  // SUPERVISOR_TOKEN; "" = not set
  EnvMap env;                    // more variables for every run ("" = not set)
  std::chrono::milliseconds listen_timeout = 10s;
};

// The agent binary, bound to 127.0.0.1. Each start is a new run with its own log agent-N.log,
// so a test can restart it and still check every run's log.
class AgentProcess {
 public:
  explicit AgentProcess(AgentSetup setup);

  // Writes options.json as given (it may be malformed on purpose) and starts a new run without
  // waiting. `extra_env` overrides the setup's variables for this run.
  void launch(const std::string& options_text, const EnvMap& extra_env = {});
  // launch() + wait_listening(); returns the port.
  int start(const nlohmann::json& options, const EnvMap& extra_env = {});
  // Waits (setup.listen_timeout) for "INFO Listening { port: N }"; REQUIREs it; returns N.
  int wait_listening();

  int port() const { return port_; }
  int runs() const { return runs_; }
  Process& process() { return *proc_; }
  // SIGKILLs the current run if it still runs, and forgets it.
  void discard() { proc_.reset(); }
  // SIGTERM; CHECKs exit code 0 within 20 s.
  void stop();

  std::string log_path(int run) const;
  std::string all_logs() const;  // every run's log, in order
  void check_logs_have_no_secrets(const std::vector<std::string>& secrets) const;
  bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = 20s) const;
  // Waits until the current run's log holds at least `n` lines with `needle`.
  bool wait_count(const std::string& needle, std::size_t n,
                  std::chrono::milliseconds timeout) const;

  // GET /api/ with a bearer token; the status, 0 without an answer.
  int api_status(const std::string& token) const;
  // GET /_dinodia/sync-status; REQUIREs 200.
  nlohmann::json sync_status(const std::string& status_token) const;

 private:
  AgentSetup setup_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int runs_ = 0;
};

}  // namespace dinodia::testing
