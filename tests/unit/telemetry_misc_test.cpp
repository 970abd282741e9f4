// telemetry: LAN base URL, HA areas and the Zigbee rules (docs/compatibility.md#lan-address,
// #ha-areas, #zigbee).
#include <catch2/catch.hpp>

#include "telemetry/areas.hpp"
#include "telemetry/lan_address.hpp"
#include "telemetry/zha.hpp"
#include "tests/unit/telemetry_a5_validator.hpp"

using namespace dinodia::telemetry;
using Json = nlohmann::json;

namespace {
Json iface(const char* name, bool primary, Json addresses, Json gateway = nullptr) {
  return {{"interface", name},
          {"primary", primary},
          {"enabled", true},
          {"connected", true},
          {"ipv4", {{"method", "auto"}, {"address", addresses}, {"gateway", gateway}}}};
}
// One interface goes in as Json::array({...}): `{x}` with x a Json is a copy of x for clang and
// a one-element array for gcc.
Json envelope(Json interfaces) {
  return {{"result", "ok"},
          {"data",
           {{"interfaces", interfaces},
            {"docker", {{"interface", "hassio"}, {"address", "172.30.32.0/23"}}}}}};
}
}  // namespace

TEST_CASE("LAN URL: the primary interface's private IPv4 (Supervisor /network/info shape)",
          "[lan]") {
  auto url =
      lan_base_url_from_network_info(envelope({iface("wlan0", false, {"10.0.0.9/24"}, "10.0.0.1"),
                                               iface("eth0", true, {"192.168.1.20/24"})}));
  REQUIRE(url);
  CHECK(*url == "http://192.168.1.20:8123");
  CHECK(a5::lan_base_url(*url) == "");
}

TEST_CASE("LAN URL: never public, loopback, link-local, CGNAT or the hassio network", "[lan]") {
  for (const char* bad :
       {"8.8.8.8/24", "127.0.0.1/8", "169.254.3.4/16", "100.64.0.5/10", "172.30.32.1/23",
        "172.30.33.7/24", "0.0.0.0/0", "192.168.1.256/24", "192.168.1/24", "1.2.3.4.5"}) {
    INFO(bad);
    CHECK_FALSE(lan_base_url_from_network_info(
        envelope(Json::array({iface("eth0", true, {bad}, "1.1.1.1")}))));
  }
  // the primary is public: a private secondary address wins instead
  auto url = lan_base_url_from_network_info(
      envelope({iface("eth0", true, {"81.2.3.4/24"}), iface("eth1", false, {"10.1.2.3/24"})}));
  CHECK(url == "http://10.1.2.3:8123");
  // no regex fallback over the response (legacy would have returned the docker network)
  CHECK_FALSE(lan_base_url_from_network_info(envelope(Json::array())));
  CHECK_FALSE(lan_base_url_from_network_info(Json("garbage")));
}

TEST_CASE("LAN URL: a Docker-looking address never ranks above a real LAN address", "[lan]") {
  auto url = lan_base_url_from_network_info(
      envelope({iface("docker0", true, {"172.17.0.1/16"}, "172.17.0.254"),
                iface("eth0", false, {"192.168.0.5/24"})}));
  CHECK(url == "http://192.168.0.5:8123");
  // alone, a 172.18 address is still a valid private LAN address
  CHECK(lan_base_url_from_network_info(envelope(
            Json::array({iface("eth0", true, {"172.18.4.4/16"})}))) == "http://172.18.4.4:8123");
  // gateway beats range preference among non-primary interfaces; disconnected ones are skipped
  Json down = iface("eth2", false, {"192.168.9.9/24"}, "192.168.9.1");
  down["connected"] = false;
  CHECK(lan_base_url_from_network_info(envelope({iface("a", false, {"192.168.7.7/24"}),
                                                 iface("b", false, {"10.7.7.7/8"}, "10.0.0.1"),
                                                 down})) == "http://10.7.7.7:8123");
}

TEST_CASE("LAN URL: legacy shapes (top-level interfaces, ip_address strings, addr_info)", "[lan]") {
  CHECK(lan_base_url_from_network_info(
            Json{{"interfaces", {{{"ip_address", "192.168.1.100/24"}}}}}) == std::nullopt);
  CHECK(lan_base_url_from_network_info(
            Json{{"interfaces", {{{"ipv4", {{"ip_address", "192.168.1.100/24"}}}}}}}) ==
        "http://192.168.1.100:8123");
  CHECK(
      lan_base_url_from_network_info(Json{
          {"interfaces", {{{"addr_info", {{{"local_ip", "10.9.8.7"}}}}, {"gw4", "10.9.8.1"}}}}}) ==
      "http://10.9.8.7:8123");
  CHECK(parse_ipv4("010.1.1.1"));  // three digits per part, as the legacy check
  CHECK_FALSE(parse_ipv4("1.1.1.1 "));
  CHECK_FALSE(parse_ipv4("1..1.1"));
}

TEST_CASE("areas: the 0.4.17 transform and the haAreas shape", "[areas]") {
  Json reg = Json::array({{{"area_id", "kitchen"}, {"name", " Kitchen "}},
                          {{"area_id", "kitchen_2"}, {"name", "KITCHEN"}},
                          {{"area_id", ""}, {"name", "Hall"}},
                          {{"area_id", "x"}, {"name", "  "}},
                          "junk"});
  auto out = transform_area_registry(reg);
  REQUIRE(out);
  CHECK(*out == Json::array({{{"areaId", "kitchen"}, {"name", "Kitchen"}}, {{"name", "Hall"}}}));
  Json big = Json::array();
  for (int i = 0; i < 600; ++i)
    big.push_back({{"area_id", "a" + std::to_string(i)}, {"name", "Area " + std::to_string(i)}});
  CHECK(transform_area_registry(big)->size() == 500);
  CHECK(transform_area_registry(Json::array()) == Json::array());       // genuinely empty
  CHECK_FALSE(transform_area_registry(Json::array({{{"name", ""}}})));  // all invalid: nothing
  CHECK_FALSE(transform_area_registry(Json::object()));
}

TEST_CASE("areas: refresh policy, no stale re-sends, in-flight newer snapshot kept", "[areas]") {
  AreaSnapshots s(0);  // non-positive -> 10 minutes
  CHECK(s.fetch_due(1'000'000));
  CHECK(s.contribution().is_null());
  REQUIRE(s.on_fetched(Json::array({{{"area_id", "k"}, {"name", "Kitchen"}}}), 1'000'000));
  CHECK_FALSE(s.fetch_due(1'000'000 + 599'999));
  CHECK(s.fetch_due(1'000'000 + 600'000));
  Json sent = s.contribution();
  CHECK(a5::ha_areas(sent) == "");
  CHECK(sent["capturedAt"] == "1970-01-01T00:16:40.000Z");
  s.acknowledge(sent);
  CHECK(s.contribution().is_null());  // not re-sent as if new
  s.on_fetch_failed(2'000'000);
  CHECK(s.contribution().is_null());
  CHECK_FALSE(s.fetch_due(2'000'001));
  s.on_fetched(Json::array({{{"name", "A"}}}), 3'000'000);
  Json inflight = s.contribution();
  s.on_fetched(Json::array({{{"name", "B"}}}), 3'700'000);
  s.acknowledge(inflight);
  CHECK(s.contribution()["areas"][0]["name"] == "B");
  CHECK(AreaSnapshots(2.9).fetch_due(0));
}

TEST_CASE("zha: error mapping, row by row", "[zha]") {
  struct Row {
    const char* error;
    int status;
    const char* code;
  };
  const Row rows[] = {
      {"", 500, "unknown_error"},
      {"supervisor_token_missing", 503, "supervisor_token_missing"},
      {"HA_WS_AUTH_MISSING", 503, "upstream_auth_failed"},
      {"ha_ws_auth_invalid", 503, "upstream_auth_failed"},
      {"ha_ws_timeout", 504, "ha_timeout"},
      {"ha_ws_closed", 504, "ha_timeout"},
      {"ha_service_error:404:Not Found", 400, "zha_not_configured"},
      {"ha_ws_result_error:Unknown command.", 400, "zha_not_configured"},
      {"something not found here", 400, "zha_not_configured"},
      {"ha_ws_result_error:Config entry missing", 400, "zha_not_configured"},
      {"ZHA is not loaded", 400, "zha_not_configured"},
      {"ha_service_error:500:boom", 502, "permit_failed"},
      {"ha_ws_result_error:boom", 502, "zha_query_failed"},
      {"ECONNREFUSED 127.0.0.1:80", 500, "unknown_error"},
      // order matters: the token check comes before the timeout check
      {"supervisor_token_missing ha_ws_timeout", 503, "supervisor_token_missing"},
  };
  for (const auto& r : rows) {
    INFO(r.error);
    auto e = classify_zha_error(r.error);
    CHECK(e.status == r.status);
    CHECK(e.code == r.code);
  }
  CHECK(classify_zha_error("ha_ws_timeout").message ==
        "Home Assistant Zigbee did not respond in time.");
  CHECK(Json::parse(classify_zha_error("ha_service_error:500").body()) ==
        Json{{"error", "Could not start Zigbee pairing on your Dinodia Hub."},
             {"code", "permit_failed"}});
}

TEST_CASE("zha: permit duration and body rules", "[zha]") {
  CHECK(permit_duration(Json{{"duration", "30"}}) == 60);
  CHECK(permit_duration(Json{{"duration", 0}}) == 1);
  CHECK(permit_duration(Json{{"duration", -5}}) == 1);
  CHECK(permit_duration(Json{{"duration", 999}}) == 254);
  CHECK(permit_duration(Json{{"duration", 300}}) == 254);
  CHECK(permit_duration(Json{{"duration", 12.9}}) == 12);
  CHECK(permit_duration(Json::object()) == 60);
  CHECK(permit_duration(Json::array()) == 60);
  auto empty = parse_permit_body("", false);
  CHECK(empty.value == Json::object());
  auto bad = parse_permit_body("{nope", false);
  CHECK_FALSE(bad.value);
  CHECK(Json::parse(bad.error_body) == Json{{"error", "Invalid request body."},
                                            {"code", "invalid_json"},
                                            {"details", "Invalid JSON body"}});
  CHECK(Json::parse(parse_permit_body("", true).error_body)["details"] == "Request body too large");
  CHECK(Json::parse(unauthorized_body()) ==
        Json{{"error", "Unauthorized."}, {"code", "unauthorized"}});
  CHECK(Json::parse(permit_ok_body(60)) == Json{{"ok", true}, {"duration", 60}});
}

TEST_CASE("zha: devices and health bodies", "[zha]") {
  Json result = Json::array({{{"ieee", " 00:11 "},
                              {"name", " Plug "},
                              {"manufacturer", ""},
                              {"model", 5},
                              {"available", true}},
                             {{"ieee", ""}, {"name", "dropped"}},
                             {{"ieee", "22:33"}, {"available", "yes"}}});
  // Byte-exact, in the 0.4.17 key order.
  CHECK(zha_devices_body(result).dump() ==
        R"({"devices":[{"ieee":"00:11","name":"Plug","manufacturer":null,"model":null,)"
        R"("available":true},{"ieee":"22:33","name":null,"manufacturer":null,"model":null,)"
        R"("available":null}]})");
  CHECK(zha_devices_body(Json::object()).dump() == R"({"devices":[]})");
  ZhaHealth h;
  h.supervisor_token_present = true;
  Json obj = Json::object();
  set_registry_outcome(h, &obj, "");
  set_zha_outcome(h, false, "ha_ws_timeout");
  CHECK(Json::parse(zha_health_body(h)) == Json{{"hubReachable", true},
                                                {"supervisorTokenPresent", true},
                                                {"registryReadable", false},
                                                {"registryErrorCode", "registry_unexpected_shape"},
                                                {"zhaDevicesReadable", false},
                                                {"zhaErrorCode", "ha_timeout"}});
  Json arr = Json::array();
  set_registry_outcome(h, &arr, "");
  set_zha_outcome(h, true, "");
  CHECK(Json::parse(zha_health_body(h))["registryErrorCode"].is_null());
  set_registry_outcome(h, nullptr, "ha_ws_auth_invalid");
  CHECK(h.registry_error_code == "upstream_auth_failed");
}
