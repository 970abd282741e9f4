// agent/ha_sync_fetches: the Home Assistant reads of a sync cycle against fake_ha over a real
// socket, in each phase of the telemetry service (docs/compatibility.md#first-cycle). Before the
// service starts, the loop it will use (the bridge's worker 0) does not run yet, as in the first
// cycle of a hub with no stored hashes: the reads must still answer, within their bounds. Once
// it runs, they go to that loop; once it stopped, nothing is asked.
#include <httplib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/ha_sync_fetches.hpp"
#include "tests/support/process.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kSupervisorToken = "ha-sync-fetches-test-supervisor-3b8e";

struct Fake {
  dinodia::testing::TempDir dir;
  std::unique_ptr<dinodia::testing::Process> process;
  int port = 0;

  Fake() {
    process = std::make_unique<dinodia::testing::Process>(
        std::vector<std::string>{dinodia::testing::fake_ha_binary(), "--port", "0", "--token",
                                 kSupervisorToken, "--entities", "3"},
        std::map<std::string, std::string>{}, dir.file("fake_ha.log"));
    auto line = process->wait_for_log("LISTENING");
    REQUIRE(line);
    port = dinodia::testing::port_from_line(*line);
  }

  dinodia::ha_client::HaClientConfig config() const {
    dinodia::ha_client::HaClientConfig c;
    c.upstream = dinodia::ha_bridge::parse_upstream_url("http://127.0.0.1:" + std::to_string(port));
    c.supervisor_token = kSupervisorToken;
    c.ws_tokens = {kSupervisorToken};
    return c;
  }

  void set(const json& body) const {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Post("/_fake/set", body.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }

  // How many /network/info requests the fake received.
  int network_info_requests() const {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/_fake/requests");
    REQUIRE(r);
    int n = 0;
    for (const auto& req : json::parse(r->body)) n += req["target"] == "/network/info" ? 1 : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("HA sync fetches: before start on the sync thread's own loop, then on the service's",
          "[ha_sync_fetches][socket]") {
  Fake fake;
  fake.set({{"area_registry", json::array({{{"area_id", "hall"}, {"name", "Hall"}}})}});
  // The bridge's loop before the bridge starts: nothing runs it.
  boost::asio::io_context service_io;
  dinodia::agent::HaSyncFetches fetches(service_io, fake.config());
  REQUIRE(fetches.before_start());
  REQUIRE(fetches.may_fetch());

  SECTION("before start: both reads answer although the service's loop does not run") {
    CHECK(fetches.lan_base_url() == std::optional<std::string>("http://192.168.1.50:8123"));
    auto [error, areas] = fetches.area_registry();
    CHECK(error.empty());
    CHECK(areas == json::array({{{"area_id", "hall"}, {"name", "Hall"}}}));
    // Again: the own loop is reused after it ran out of work.
    CHECK(fetches.lan_base_url() == std::optional<std::string>("http://192.168.1.50:8123"));
    CHECK(fake.network_info_requests() == 2);
  }

  SECTION("before start: a Supervisor that does not answer costs 2.5 s, not more") {
    fake.set({{"network_info_delay", {{"ms", 10000}, {"count", 1}}}});
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(fetches.lan_base_url().has_value());
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= 2000ms);
    CHECK(waited < 3500ms);
    // The abandoned request does not stand in the way of the next read.
    auto [error, areas] = fetches.area_registry();
    CHECK(error.empty());
    CHECK(fetches.lan_base_url() == std::optional<std::string>("http://192.168.1.50:8123"));
  }

  SECTION("running: on the service's loop; stopped: nothing is asked") {
    auto work = boost::asio::make_work_guard(service_io);
    std::thread loop([&] { service_io.run(); });
    fetches.set_running(true);
    CHECK(fetches.running());
    CHECK_FALSE(fetches.before_start());
    CHECK(fetches.lan_base_url() == std::optional<std::string>("http://192.168.1.50:8123"));
    CHECK(fetches.area_registry().first.empty());
    fetches.set_running(false);
    CHECK_FALSE(fetches.may_fetch());
    const int before = fake.network_info_requests();
    CHECK_FALSE(fetches.lan_base_url().has_value());
    CHECK_FALSE(fetches.area_registry().first.empty());
    CHECK(fake.network_info_requests() == before);
    work.reset();
    service_io.stop();
    loop.join();
  }
}
