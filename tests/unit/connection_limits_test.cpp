// The bridge's connection accounting (ha_bridge/detail/connection_tracker) and failed-token
// count (ha_bridge/detail/auth_failures), without sockets: eviction order, per-address limit,
// the failed-token delays and the bound on the address table (docs/hostile-clients.md).
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "ha_bridge/detail/auth_failures.hpp"
#include "ha_bridge/detail/connection_tracker.hpp"

using dinodia::ha_bridge::detail::AuthFailures;
using dinodia::ha_bridge::detail::ConnectionTracker;
using Admission = ConnectionTracker::Admission;
using boost::asio::ip::make_address;

TEST_CASE("ConnectionTracker: at the limit the oldest unauthenticated connection is evicted") {
  ConnectionTracker tracker;
  tracker.set_limits({3, 10});
  std::vector<int> closed;
  const auto a = make_address("192.168.1.10");
  const auto add = [&](int n, bool authenticated) {
    const auto id = tracker.add([&closed, n] { closed.push_back(n); }, {}, a, /*admitted=*/true);
    if (authenticated) tracker.mark_authenticated(id);
    return id;
  };
  const auto first = add(1, false);
  add(2, true);  // a kiosk
  const auto third = add(3, false);
  CHECK(tracker.admit(a) == Admission::admitted_after_eviction);
  CHECK(closed == std::vector<int>{1});
  const auto fourth = add(4, false);  // the newcomer
  // #1 is still closing: not chosen twice; the next eviction takes #3, the kiosk stays.
  CHECK(tracker.admit(a) == Admission::admitted_after_eviction);
  CHECK(closed == std::vector<int>{1, 3});
  add(5, true);
  tracker.remove(first);  // their loops have closed them
  tracker.remove(third);
  CHECK(tracker.size() == 3);
  // Every live connection has proved a token: the newcomer is refused.
  tracker.mark_authenticated(fourth);
  CHECK(tracker.admit(a) == Admission::refused_full);
  CHECK(closed == std::vector<int>{1, 3});
}

TEST_CASE("ConnectionTracker: one address cannot hold more than its share") {
  ConnectionTracker tracker;
  tracker.set_limits({100, 2});
  const auto a = make_address("192.168.1.10");
  const auto b = make_address("fe80::1");
  const auto id = tracker.add([] {}, {}, a);
  tracker.add([] {}, {}, a);
  CHECK(tracker.admit(a) == Admission::refused_address);
  CHECK(tracker.admit(b) == Admission::admitted);
  tracker.remove(id);
  CHECK(tracker.admit(a) == Admission::admitted);
  CHECK(tracker.addresses() == 2);  // admitted: counted before its session starts
}

TEST_CASE("AuthFailures: a few free attempts, then a doubling delay up to the cap") {
  AuthFailures failures;
  const auto a = make_address("192.168.1.20");
  auto now = AuthFailures::Clock::now();
  // The milliseconds' own count type: `long` is 32 bits on armv7.
  using Millis = std::chrono::milliseconds::rep;
  std::vector<Millis> delays;
  delays.reserve(9);
  for (int i = 0; i < 9; ++i) delays.push_back(failures.failed(a, now).count());
  CHECK(delays == std::vector<Millis>{0, 0, 0, 250, 500, 1000, 2000, 4000, 4000});
  // Another address starts afresh; a quiet minute forgets the first one.
  CHECK(failures.failed(make_address("192.168.1.21"), now).count() == 0);
  now += std::chrono::seconds(61);
  CHECK(failures.failed(a, now).count() == 0);
}

TEST_CASE("AuthFailures: the address table is bounded") {
  AuthFailures::Settings settings;
  settings.max_addresses = 16;
  AuthFailures failures(settings);
  const auto now = AuthFailures::Clock::now();
  for (int i = 0; i < 1000; ++i) {
    (void)failures.failed(make_address("2001:db8::" + std::to_string(i)), now);
  }
  CHECK(failures.addresses() <= 16);
  failures.tick(now + std::chrono::minutes(2));
  CHECK(failures.addresses() == 0);
}
