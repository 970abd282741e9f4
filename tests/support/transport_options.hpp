#pragma once
// Platform transport options for unit tests against servers on this machine.
#include <chrono>

#include "platform_client/transport.hpp"
#include "tests/support/time_scale.hpp"

namespace dinodia::testing {

// Deadlines short enough that a test of a timeout ends quickly.
inline platform_client::TransportOptions fast_transport_options() {
  platform_client::TransportOptions o;
  o.connect_timeout = std::chrono::seconds(1);
  o.total_timeout = std::chrono::seconds(2);
  o.user_agent = "dinodia-hub-agent/test";
  return o;
}

// The same, for tests that expect an answer over TLS: the deadlines are scaled under emulation
// (time_scale.hpp), where reading the system's CA certificates and the handshake alone take
// seconds.
inline platform_client::TransportOptions tls_transport_options() {
  auto o = fast_transport_options();
  o.connect_timeout = std::chrono::ceil<std::chrono::seconds>(scaled(o.connect_timeout));
  o.total_timeout = std::chrono::ceil<std::chrono::seconds>(scaled(o.total_timeout));
  return o;
}

}  // namespace dinodia::testing
