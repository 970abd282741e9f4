// The first cycle of a hub with no stored hashes (docs/compatibility.md#first-cycle): it runs
// before port 8099 opens and before the telemetry service starts, and its token-state publishes
// the apps' first token, so it must already carry Home Assistant's LAN address (and the area
// snapshot); otherwise the apps cache the address the installer typed. The real agent between
// fake_ha (Supervisor + Core stand-in) and fake_platform, which records every request it gets
// (/_fake/state, recentRequests) and validates the telemetry with the platform's rules.
//
// The first case runs at the production cadence (no DINODIA_SYNC_INTERVAL_SECONDS): the next
// cycle is 2 to 3 minutes away, so nothing a later cycle sends can stand in for the first one.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kSupervisorToken = "supervisor-secret-first-pairing-4e7a";
const std::string kSerial = "HUB-FIRST-PAIRING-1";
const std::string kBootstrap = "bootstrap-secret-first-pairing-b51c";
const std::string kStatusToken = "status-token-first-pairing-02d9";

// /network/info "data" as the Supervisor gives it, with one primary Ethernet interface holding
// `cidr` (plus the Supervisor's internal network, which must never be chosen).
json network_info(const std::string& cidr, const std::string& gateway) {
  return {{"interfaces", json::array({{{"interface", "eth0"},
                                       {"type", "ethernet"},
                                       {"enabled", true},
                                       {"connected", true},
                                       {"primary", true},
                                       {"ipv4",
                                        {{"method", "auto"},
                                         {"address", json::array({cidr})},
                                         {"gateway", gateway},
                                         {"ready", true}}}}})},
          {"docker", {{"interface", "hassio"}, {"address", "172.30.32.0/23"}}}};
}

// fake_ha, fake_platform (the hub provisioned, nothing paired) and an agent with no stored state.
struct FirstPairing {
  TempDir dir;
  FakeHaProcess ha{dir, kSupervisorToken, 30};
  FakePlatformProcess platform{dir, kSerial, kBootstrap, FakePlatformOptions{"", false, {}}};
  AgentProcess agent{AgentSetup{dir.path(), "", ha.url(), kSupervisorToken, {}, 40s}};

  // `sync_interval_seconds` "" leaves DINODIA_SYNC_INTERVAL_SECONDS unset, even if the test's
  // own environment has it: the production cadence.
  void start(const std::string& sync_interval_seconds) {
    agent.start(sync_agent_options(kSerial, kBootstrap, kStatusToken, platform.url()),
                {{"DINODIA_SYNC_INTERVAL_SECONDS", sync_interval_seconds}});
  }

  // Every request the platform still remembers, oldest first: {route, listener, atMs, body}.
  json requests() const { return platform.state().value("recentRequests", json::array()); }

  void check_no_secrets() const {
    std::vector<std::string> secrets{kSupervisorToken, kBootstrap, kStatusToken};
    const json hub = platform.hub();
    if (hub["syncSecret"].is_string()) secrets.push_back(hub["syncSecret"]);
    agent.check_logs_have_no_secrets(secrets);
  }
};

// The index in `requests` of the first request on `route` after index `after` (-1: from the
// start); -1 if there is none.
int next_request(const json& requests, const std::string& route, int after = -1) {
  for (int i = after + 1; i < static_cast<int>(requests.size()); ++i) {
    if (requests[i].value("route", "") == route) return i;
  }
  return -1;
}

int count_requests(const json& requests, const std::string& route) {
  int n = 0;
  for (const auto& r : requests) n += r.value("route", "") == route ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE(
    "first pairing at the production cadence: the first token-state carries lanBaseUrl and "
    "haAreas",
    "[telemetry][integration][sync][lan]") {
  FirstPairing f;
  // An address and areas of this test's own, so what is uploaded can only come from them.
  f.ha.post("/_fake/set",
            {{"network_info", network_info("10.20.30.40/24", "10.20.30.1")},
             {"area_registry", json::array({{{"area_id", "lounge"}, {"name", "Lounge"}},
                                            {{"area_id", "kitchen"}, {"name", "Kitchen"}}})}});
  f.start("");
  // The port opened once the first cycle had ended: it did not run into the 20 s bound.
  REQUIRE(f.agent.wait_log("Platform sync updated tokens", 5s));
  CHECK(f.agent.process().count_log("Initial platform sync is taking long") == 0);
  CHECK(f.agent.process().count_log("everyMinutes: 2, jitterSeconds: 60") == 1);

  const json requests = f.requests();
  INFO(requests.dump());
  const int pair = next_request(requests, "pair");
  REQUIRE(pair >= 0);
  const int first = next_request(requests, "token-state", pair);
  REQUIRE(first >= 0);
  const json& body = requests[first]["body"];
  CHECK(body["agentSeenVersion"] == 1);
  CHECK(body.value("lanBaseUrl", "") == "http://10.20.30.40:8123");
  REQUIRE(body.contains("haAreas"));
  CHECK(body["haAreas"]["schemaVersion"] == 1);
  CHECK(body["haAreas"]["areas"] == json::array({{{"areaId", "lounge"}, {"name", "Lounge"}},
                                                 {{"areaId", "kitchen"}, {"name", "Kitchen"}}}));
  // Nothing later can have carried them: at this cadence that was the only token-state so far.
  CHECK(count_requests(requests, "token-state") == 1);

  // The platform took both in the same request that published the first token: an app fetching
  // its Home-mode secrets from now on gets the LAN address with it.
  const json hub = f.platform.hub();
  CHECK(hub["publishedVersion"] == 1);
  CHECK(hub["lastReportedLanBaseUrl"] == "http://10.20.30.40:8123");
  CHECK(hub["lastReportedHaAreas"]["areas"].size() == 2);
  f.platform.check_no_telemetry_drops();
  const auto token = f.platform.published_token();
  REQUIRE(token.has_value());
  CHECK(f.agent.api_status(*token) == 200);

  f.agent.stop();
  f.platform.check_no_duplicate_nonces();
  f.check_no_secrets();
}

TEST_CASE(
    "first pairing while the Supervisor does not answer network info: paired and synced within "
    "the bound without lanBaseUrl - the next cycle carries it",
    "[telemetry][integration][sync][lan]") {
  FirstPairing f;
  // The first /network/info is answered only after 10 s, far past the agent's 2.5 s; the areas
  // answer at once. (Stock network info: eth0 primary 192.168.1.50/24.)
  f.ha.post("/_fake/set", {{"network_info_delay", {{"ms", 10000}, {"count", 1}}}});
  // A short interval for the second cycle only; the first runs at once either way.
  f.start("3");
  REQUIRE(f.agent.wait_log("Platform sync updated tokens", 5s));
  CHECK(f.agent.process().count_log("Initial platform sync is taking long") == 0);

  json requests = f.requests();
  INFO(requests.dump());
  const int pair = next_request(requests, "pair");
  REQUIRE(pair >= 0);
  const int first = next_request(requests, "token-state", pair);
  REQUIRE(first >= 0);
  const json body = requests[first]["body"];
  CHECK_FALSE(body.contains("lanBaseUrl"));
  CHECK(body.contains("haAreas"));
  // The agent waited for the Supervisor, but only as long as the network info request's own
  // timeout (2.5 s, docs/compatibility.md#first-cycle), then went on without the address.
  const std::int64_t waited_ms =
      requests[first]["atMs"].get<std::int64_t>() - requests[pair]["atMs"].get<std::int64_t>();
  CHECK(waited_ms >= 2000);
  CHECK(waited_ms < 6000);
  CHECK(wait_until([&] { return f.ha.stats()["cancelled"] == 1; }, 5s));  // it hung up
  CHECK(f.platform.hub()["publishedVersion"] == 1);
  const auto token = f.platform.published_token();
  REQUIRE(token.has_value());
  CHECK(f.agent.api_status(*token) == 200);

  // The next cycle, with the Supervisor answering again, carries the address.
  int second = -1;
  REQUIRE(wait_until(
      [&] {
        requests = f.requests();
        second = next_request(requests, "token-state", first);
        return second >= 0;
      },
      15s));
  CHECK(requests[second]["body"].value("lanBaseUrl", "") == "http://192.168.1.50:8123");
  CHECK(f.platform.hub()["lastReportedLanBaseUrl"] == "http://192.168.1.50:8123");
  f.platform.check_no_telemetry_drops();

  f.agent.stop();
  f.platform.check_no_duplicate_nonces();
  f.check_no_secrets();
}
