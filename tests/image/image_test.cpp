// The add-on image, proven as a hub runs it (scripts/image.sh test ARCH): the container started
// by podman with its own entry point, /data/options.json as the Supervisor writes it and the
// Supervisor's environment, against the Home Assistant and platform stand-ins. What each case
// proves is what docs/addon.md promises a home: the image is the add-on config.yaml names, a
// fresh install pairs, syncs and serves the apps, a crash restarts the agent without any toggle,
// a stop exits 0, wrong options stop the add-on with one line, and a 0.4.17 /data folder is
// upgraded with nothing lost.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/crypto.hpp"
#include "tests/image/addon_container.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/ws_client.hpp"

namespace {

using dinodia::testing::AddonContainer;
using dinodia::testing::AgentProcess;
using dinodia::testing::CommandResult;
using dinodia::testing::EnvMap;
using dinodia::testing::FakeHaProcess;
using dinodia::testing::FakePlatformOptions;
using dinodia::testing::FakePlatformProcess;
using dinodia::testing::free_loopback_port;
using dinodia::testing::image_arch;
using dinodia::testing::image_under_test;
using dinodia::testing::run_command;
using dinodia::testing::scaled;
using dinodia::testing::TempDir;
using dinodia::testing::wait_until;
using dinodia::testing::write_file;
using dinodia::testing::WsClient;
using Json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kSupervisorToken = "image-supervisor-token-6c0d9e";
const std::string kHubToken = "image-hub-token-2f7a41";
const std::string kSerial = "DIN-GB-IMAGE01";
const std::string kBootstrap = "image-bootstrap-secret-9b3e57";
const std::string kStatusToken = "image-status-token-1d5c";

// The Supervisor's environment for the add-on; the stand-in plays the Supervisor on loopback.
// The agent binds loopback only: the container shares the host's network here.
EnvMap supervisor_env(const FakeHaProcess& ha) {
  return {{"SUPERVISOR_TOKEN", kSupervisorToken},
          {"DINODIA_SUPERVISOR_URL", ha.url()},
          {"DINODIA_BIND_ADDRESS", "127.0.0.1"}};
}

// The options a home upgraded from 0.4.17 has, as the Supervisor writes them, on a free port.
Json home_options(int port) {
  return Json{{"port", port},
              {"ws_auth_mode", "supervisor"},
              {"log_level", "info"},
              {"max_request_body_mb", 16},
              {"platform_sync_enabled", false},
              {"platform_sync_interval_minutes", 2},
              {"ha_area_snapshot_refresh_minutes", 10},
              {"heating_usage_tracking_enabled", true},
              {"heating_usage_max_tracked_entities", 200},
              {"heating_usage_min_process_interval_ms", 1000},
              {"heating_usage_label_refresh_minutes", 30},
              {"heating_usage_gap_unknown_after_seconds", 600},
              {"heating_usage_poll_interval_seconds", 300},
              {"electric_usage_tracking_enabled", true},
              {"electric_usage_max_tracked_entities", 200},
              {"electric_usage_poll_interval_seconds", 300},
              {"electric_usage_label_refresh_minutes", 5},
              {"electric_usage_gap_unknown_after_seconds", 600}};
}

Json paired_options(int port, const std::string& platform_url) {
  Json options = home_options(port);
  options.update(Json{{"platform_sync_enabled", true},
                      {"platform_base_url", platform_url},
                      {"hub_agent_id", kSerial},
                      {"hub_agent_secret", kBootstrap},
                      {"sync_status_token", kStatusToken}});
  return options;
}

int api_status(int port, const std::string& token) {
  auto r = dinodia::testing::http_get(port, "/api/", {{"Authorization", "Bearer " + token}});
  return r ? r->status : 0;
}

// Mode bits of a file in /data as the container left it.
unsigned mode_of(const std::string& path) {
  const CommandResult r = run_command({"stat", "-c", "%a", path});
  REQUIRE(r.code == 0);
  return static_cast<unsigned>(std::stoul(r.output, nullptr, 8));
}

// The Supervisor's stop: SIGTERM to PID 1, SIGKILL 10 s later. Under qemu-user (ARM images here)
// the kernel drops that SIGTERM: s6-svscan blocks the signal to read it from a signalfd, qemu
// does not block it on the host, and an unblocked signal with the default action never reaches a
// namespace's PID 1. A hub runs s6-svscan natively, as amd64 does here. So on an emulated image
// the stop starts the way s6-svscan handles SIGTERM (s6-svscanctl -t); everything after it, the
// agent's clean exit and the container's exit code, is the same path (docs/building.md).
bool stop_as_supervisor(const AddonContainer& container) {
  if (image_arch() == "amd64") {
    return run_command({"podman", "stop", "-t", "10", container.name()}).code == 0;
  }
  if (container.exec("s6-svscanctl -t /run/dinodia-hub-agent/services").code != 0) return false;
  return container.wait_exit(10s).has_value();
}

void check_no_secrets(const AddonContainer& container, const std::vector<std::string>& more = {}) {
  std::vector<std::string> secrets{kSupervisorToken, kHubToken, kBootstrap, kStatusToken};
  secrets.insert(secrets.end(), more.begin(), more.end());
  dinodia::testing::check_no_secrets(container.logs(), secrets, "container log");
}

}  // namespace

TEST_CASE("the image is the add-on config.yaml names for its architecture") {
  const std::string image = image_under_test();
  auto inspect = [&](const std::string& format) {
    CommandResult r = run_command({"podman", "image", "inspect", "--format", format, image});
    REQUIRE(r.code == 0);
    while (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
    return r.output;
  };
  const std::string arch = image_arch();
  CHECK(inspect("{{ index .Labels \"io.hass.arch\" }}") == arch);
  CHECK(inspect("{{ index .Labels \"io.hass.type\" }}") == "app");
  CHECK(inspect("{{ index .Labels \"io.hass.version\" }}") == "1.0.0");
  const std::map<std::string, std::string> oci_arch{
      {"amd64", "amd64"}, {"aarch64", "arm64"}, {"armv7", "arm"}};
  CHECK(inspect("{{.Architecture}}") == oci_arch.at(arch));
  CHECK(inspect("{{json .Config.Entrypoint}}") == R"(["/usr/lib/dinodia-hub-agent/init"])");
  // The Supervisor reads Docker's health state: the check must survive into the image.
  const std::string health = inspect("{{json .Config.Healthcheck}}");
  INFO(health);
  CHECK(health.find("/_dinodia/health") != std::string::npos);

  // The binary is this architecture's, runs there and needs nothing but the C library.
  TempDir dir;
  const std::string ctr = "dinodia-image-probe-" + std::to_string(::getpid());
  REQUIRE(run_command({"podman", "create", "--name", ctr, image}).code == 0);
  const CommandResult copied =
      run_command({"podman", "cp", ctr + ":/usr/bin/dinodia-hub-agent", dir.file("agent")});
  run_command({"podman", "rm", "-f", ctr});
  REQUIRE(copied.code == 0);
  const CommandResult header = run_command({"readelf", "-h", "-d", dir.file("agent")});
  REQUIRE(header.code == 0);
  const std::map<std::string, std::string> machine{
      {"amd64", "X86-64"}, {"aarch64", "AArch64"}, {"armv7", "ARM"}};
  INFO(header.output);
  const auto machine_at = header.output.find("Machine:");
  REQUIRE(machine_at != std::string::npos);
  const std::string machine_line =
      header.output.substr(machine_at, header.output.find('\n', machine_at) - machine_at);
  CHECK(machine_line.ends_with(" " + machine.at(arch)));
  for (const char* lib : {"libssl", "libcrypto", "libsqlite3", "libstdc++", "libboost"}) {
    CHECK(header.output.find(std::string("Shared library: [") + lib) == std::string::npos);
  }
  const CommandResult version =
      run_command({"podman", "run", "--rm", "--no-healthcheck", "--arch", oci_arch.at(arch),
                   "--entrypoint", "/usr/bin/dinodia-hub-agent", image, "--version"});
  CHECK(version.code == 0);
  CHECK(version.output == "dinodia-hub-agent 1.0.0\n");
  // The platform is HTTPS: the CA bundle must be where the linked-in OpenSSL looks for it.
  const CommandResult ca = run_command({"podman", "run", "--rm", "--no-healthcheck", "--arch",
                                        oci_arch.at(arch), "--entrypoint", "sh", image, "-c",
                                        "test -s /usr/lib/ssl/certs/ca-certificates.crt"});
  CHECK(ca.code == 0);
}

TEST_CASE("a fresh install pairs and syncs and serves a kiosk's requests and WebSocket session") {
  TempDir dir;
  TempDir data;
  FakeHaProcess ha(dir, kSupervisorToken, 30);
  FakePlatformProcess platform(dir, kSerial, kBootstrap, FakePlatformOptions{"", false, {}});
  const int port = free_loopback_port();
  write_file(data.file("options.json"), paired_options(port, platform.url()).dump());
  AddonContainer container(data.path(), supervisor_env(ha));

  REQUIRE(container.wait_log("INFO Listening { port: " + std::to_string(port), scaled(30s)));
  // Pairing, then a token-state cycle at the production cadence's first run.
  REQUIRE(container.wait_log("Paired with platform", scaled(30s)));
  REQUIRE(container.wait_log("Platform sync updated tokens", scaled(30s)));
  CHECK(platform.state()["requestCounts"].value("token-state@1", 0) >= 1);

  // The container's own HEALTHCHECK command, as the Supervisor's Docker runs it.
  const CommandResult health = run_command({"podman", "healthcheck", "run", container.name()});
  INFO(health.output);
  CHECK(health.code == 0);

  // A kiosk's poll with the token the platform hands the apps.
  const auto token = platform.published_token();
  REQUIRE(token);
  httplib::Client kiosk("127.0.0.1", port);
  kiosk.set_read_timeout(10, 0);
  const httplib::Headers auth{{"Authorization", "Bearer " + *token}};
  auto states = kiosk.Get("/api/states", auth);
  REQUIRE(states);
  CHECK(states->status == 200);
  CHECK(Json::parse(states->body).size() == 30);
  auto template_answer =
      kiosk.Post("/api/template", auth, R"({"template":"{{ 1 + 1 }}"})", "application/json");
  REQUIRE(template_answer);
  CHECK(template_answer->status == 200);
  CHECK(api_status(port, "not-a-hub-token") == 401);

  // The kiosk's WebSocket session: auth, one registry list, close.
  WsClient ws;
  dinodia::testing::ws_authenticate(ws, static_cast<std::uint16_t>(port), *token);
  ws.send_json({{"id", 1}, {"type", "config/entity_registry/list"}});
  const Json result = ws.read_result(1, scaled(10s));
  CHECK(result["success"] == true);
  ws.close();

  // State in /data is private to the add-on.
  CHECK(mode_of(data.file("dinodia-agent.db")) == 0600);
  CHECK(mode_of(data.file("dinodia_token_state.json")) == 0600);
  platform.check_no_duplicate_nonces();
  check_no_secrets(container, {*token, platform.state()["hub"]["syncSecret"]});
}

TEST_CASE("a killed agent is back within seconds - a crash loop backs off - a stop exits 0") {
  TempDir dir;
  TempDir data;
  FakeHaProcess ha(dir, kSupervisorToken, 30);
  const int port = free_loopback_port();
  Json options = home_options(port);
  options["hub_tokens"] = Json::array({kHubToken});
  write_file(data.file("options.json"), options.dump());
  AddonContainer container(data.path(), supervisor_env(ha));
  REQUIRE(container.wait_log("INFO Listening", scaled(30s)));
  REQUIRE(api_status(port, kHubToken) == 200);

  // kill -9 inside the container, as a crash would end it: s6 starts it again at once, then
  // waits longer after each further quick exit (docs/addon.md, "Supervision").
  std::vector<double> downtimes;
  for (int crash = 1; crash <= 4; ++crash) {
    int pid = 0;
    REQUIRE(wait_until([&] { return (pid = container.agent_pid()) > 0; }, scaled(10s)));
    REQUIRE(container.exec("kill -9 " + std::to_string(pid)).code == 0);
    const auto killed = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] { return api_status(port, kHubToken) != 200; }, 5s, 20ms));
    REQUIRE(wait_until([&] { return api_status(port, kHubToken) == 200; }, scaled(30s), 50ms));
    downtimes.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count());
    INFO("crash " << crash << " down for " << downtimes.back() << " s");
    CHECK(container.wait_log("restarts: " + std::to_string(crash) + " }", 5s));
  }
  INFO("downtimes: " << downtimes[0] << " " << downtimes[1] << " " << downtimes[2] << " "
                     << downtimes[3]);
  CHECK(downtimes[0] < (image_arch() == "amd64" ? 3.0 : 8.0));  // back within seconds
  CHECK(container.count_log("was killed by signal 9; restarting it now") == 1);
  CHECK(container.count_log("restarting it in 2 s") == 1);
  CHECK(container.count_log("restarting it in 4 s") == 1);
  CHECK(container.count_log("restarting it in 8 s") == 1);
  CHECK(downtimes[2] >= 4.0);  // the back-off really waits
  CHECK(downtimes[3] >= 8.0);
  CHECK(downtimes[3] > downtimes[1]);

  // The Supervisor's stop: SIGTERM to PID 1, 10 s before it would kill.
  const auto stop_started = std::chrono::steady_clock::now();
  const bool stopped = stop_as_supervisor(container);
  const double stop_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_started).count();
  CHECK(stopped);
  CHECK(container.status() == "exited");
  CHECK(container.exit_code() == 0);
  CHECK(stop_seconds < 9.0);                         // stopped cleanly, not killed at the timeout
  CHECK(container.count_log("restarting it") == 4);  // the stop is not taken for a crash
  check_no_secrets(container);
}

TEST_CASE("invalid options stop the add-on with one clear line and no restart loop") {
  TempDir dir;
  TempDir data;
  FakeHaProcess ha(dir, kSupervisorToken, 30);
  Json options = home_options(free_loopback_port());
  options["max_request_body_mb"] = 999;
  write_file(data.file("options.json"), options.dump());
  AddonContainer container(data.path(), supervisor_env(ha));
  const auto code = container.wait_exit(scaled(20s));
  const std::string log = container.logs();
  INFO(log);
  REQUIRE(code);
  CHECK(*code == 2);
  CHECK(container.count_log("ERROR Invalid options: option 'max_request_body_mb'") == 1);
  CHECK(container.count_log("restarting it") == 0);
  // Still stopped a few seconds later: nothing restarts it.
  std::this_thread::sleep_for(3s);
  CHECK(container.status() == "exited");
}

TEST_CASE("a 0.4.17 /data folder is upgraded with nothing lost") {
  TempDir dir;
  FakeHaProcess ha(dir, kSupervisorToken, 30);
  FakePlatformProcess platform(dir, kSerial, kBootstrap, FakePlatformOptions{"", false, {}});
  // The hub was paired by 0.4.17: stand in for that pairing with one run of the agent outside the
  // container, then lay out /data as 0.4.17 leaves it (docs/compatibility.md#token-state-file).
  {
    TempDir paired;
    AgentProcess legacy({paired.path(), "", ha.url(), kSupervisorToken, {}, 30s});
    Json options = paired_options(0, platform.url());
    options["heating_usage_tracking_enabled"] = false;
    options["electric_usage_tracking_enabled"] = false;
    legacy.start(options);
    REQUIRE(legacy.wait_log("Platform sync updated tokens", 30s));
    legacy.stop();
  }
  const Json hub = platform.state()["hub"];
  const std::string secret = hub["syncSecret"];
  TempDir data;
  write_file(data.file("dinodia_token_state.json"),
             Json{{"agentSeenVersion", hub["lastAckedVersion"]},
                  {"syncSecret", secret},
                  {"hubTokenHashes", hub["acceptedHashes"]},
                  {"updatedAt", "2026-11-30T10:00:00.000Z"},
                  {"lastSyncAt", "2026-11-30T10:00:00.000Z"},
                  {"publishedVersion", hub["lastAckedVersion"]},
                  {"latestVersion", hub["lastAckedVersion"]}}
                 .dump(2));
  write_file(data.file("heating_usage_state.json"), R"({
  "schemaVersion": 2, "updatedAt": "2026-11-30T10:00:00.000Z", "lastResetAt": null,
  "config": {"efficiencyBandsVersion": 1, "defaultBoilerEfficiencyBand": "B", "boilerBandsByEntityId": {}},
  "entities": {"climate.boiler": {"label": "Boiler", "onSeconds": 36000, "offSeconds": 72000,
    "unknownSeconds": 5, "efficiencyWeightedOnSeconds": 36000.0, "efficiencyOnSeconds": 36000,
    "efficiencyBand": "B", "efficiencyBandVersion": 1, "lastHeatEndAt": null, "heatRunStartedAt": null,
    "heatRunStartOutputFraction": null, "lastSeenAt": "2026-11-30T10:00:00.000Z", "lastWasOn": false,
    "lastWasKnown": true, "dirty": false,
    "lastProcessed": {"state": "off", "hvac_mode": "off", "current": 19.5, "target": 21},
    "lastProcessedAt": "2026-11-30T10:00:00.000Z"}}})");
  write_file(data.file("electric_usage_state.json"), R"({
  "schemaVersion": 1, "updatedAt": "2026-11-30T10:00:00.000Z", "lastResetAt": null, "resetAckPendingAt": null,
  "entities": {"light.device_24": {"entityId": "light.device_24", "entityName": "Device 24",
    "trackingStartedAt": "2026-11-01T00:00:00.000Z", "trackingEpoch": "t-legacy",
    "assignmentStartedAt": "2026-11-01T00:00:00.000Z", "assignmentEpoch": "a-legacy",
    "areaId": null, "areaName": null, "onSeconds": 40000, "offSeconds": 50000, "unknownSeconds": 7,
    "lastSeenAt": "2026-11-30T10:00:00.000Z", "lastWasOn": false, "lastWasKnown": true,
    "retired": false, "dirty": true}},
  "pending": []})");

  // The platform is down when the new version starts: the imported hashes alone must let the
  // apps in, and nothing may ask for a new pairing.
  platform.failure("500");
  const int port = free_loopback_port();
  write_file(data.file("options.json"), paired_options(port, platform.url()).dump());
  // A short sync interval (for tests only) so the recovery is seen within seconds.
  EnvMap env = supervisor_env(ha);
  env["DINODIA_SYNC_INTERVAL_SECONDS"] = "2";
  AddonContainer container(data.path(), env);
  REQUIRE(container.wait_log("INFO Listening", scaled(30s)));
  CHECK(container.count_log("Imported legacy token state") == 1);
  REQUIRE(container.wait_log("Imported legacy usage state { heatingEntities: 1, electricRows: 1",
                             scaled(20s)));
  const auto token = platform.published_token();
  REQUIRE(token);
  CHECK(api_status(port, *token) == 200);

  platform.failure("none");
  REQUIRE(container.wait_log("Platform sync updated tokens", scaled(60s)));
  CHECK(container.count_log("Paired with platform") == 0);
  // The usage counted by 0.4.17 goes on from where it was.
  Json row;
  REQUIRE(wait_until(
      [&] {
        for (const auto& body : platform.token_state_bodies()) {
          if (!body.contains("electricUsage")) continue;
          for (const auto& r : body["electricUsage"]["devices"]) {
            if (r.value("entityId", "") == "light.device_24" && r.value("offSeconds", 0) >= 50000) {
              row = r;
              return true;
            }
          }
        }
        return false;
      },
      scaled(60s), 500ms));
  INFO(row.dump());
  CHECK(row["onSeconds"] == 40000);

  // Rollback stays possible: the 0.4.17 token file is kept current, private, in its own shape.
  REQUIRE(stop_as_supervisor(container));
  CHECK(container.exit_code() == 0);
  const Json file = Json::parse(dinodia::testing::read_file(data.file("dinodia_token_state.json")));
  CHECK(file["syncSecret"] == secret);
  const auto current = platform.published_token();
  REQUIRE(current);
  bool listed = false;
  for (const auto& h : file["hubTokenHashes"]) listed |= h == dinodia::crypto::sha256_hex(*current);
  CHECK(listed);
  CHECK(mode_of(data.file("dinodia_token_state.json")) == 0600);
  platform.check_no_duplicate_nonces();
  check_no_secrets(container, {*token, secret});
}
