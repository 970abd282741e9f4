#pragma once
// LAN base URL detection (docs/compatibility.md#lan-address): which address the
// platform hands to the apps as "HA on the LAN". Pure: the caller fetches /network/info.
//
// Differences from 0.4.17, on purpose (docs/compatibility.md#w24): the primary interface's address
// is validated like every other candidate; only addresses the platform accepts (private IPv4,
// docs/platform-protocol.md#telemetry-fields) are ever returned; the Supervisor's internal hassio
// network (172.30.32.0/23) is never a candidate; Docker-looking 172.17-19 addresses rank below
// every other private address; and there is no regex fallback over the whole response (it could
// return a netmask or DNS server).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace dinodia::telemetry {

// A strict dotted quad: four parts, each 1-3 digits, 0..255. No leading '+', no spaces.
std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view text);
// 10/8, 172.16/12 or 192.168/16: exactly what the platform accepts in lanBaseUrl.
bool is_platform_private_ipv4(const std::array<std::uint8_t, 4>& ip);
// The Supervisor's hassio Docker network; unreachable from the LAN.
bool is_hassio_internal_ipv4(const std::array<std::uint8_t, 4>& ip);

// Picks the LAN IPv4 from a /network/info response (the Supervisor envelope {"result","data"},
// the bare data object, or legacy's other shapes) and returns "http://<ip>:8123", or nullopt
// when no address qualifies.
std::optional<std::string> lan_base_url_from_network_info(const nlohmann::json& response);

}  // namespace dinodia::telemetry
