#pragma once
// Internal to ha_bridge: failed hub-token attempts counted per client address, so that a device
// guessing tokens is slowed down and shows up in the log once a minute (docs/hostile-clients.md).
// Touched only when an attempt fails (and by the bridge's maintenance tick), never by a request
// that carries an accepted token.
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace dinodia::ha_bridge::detail {

class AuthFailures {
 public:
  using Address = boost::asio::ip::address;
  using Clock = std::chrono::steady_clock;

  struct Settings {
    std::uint32_t free_attempts = 3;  // a kiosk whose token was just rotated away gets a few 401s
    std::chrono::milliseconds first_delay{250};  // then the delay doubles per failure ...
    std::chrono::milliseconds max_delay{4000};   // ... up to this
    std::chrono::seconds forget_after{60};       // an address quiet this long starts afresh
    std::chrono::seconds log_every{60};          // one summarised line per address at most
    std::size_t max_addresses = 4096;            // bounds the table (IPv6 gives many addresses)
  };

  AuthFailures() = default;
  explicit AuthFailures(Settings settings) : settings_(settings) {}

  // Records one failed attempt from `address` (a 401, or a WebSocket auth_invalid) and returns
  // how long to wait before answering it. Logs the address's summary line when one is due.
  std::chrono::milliseconds failed(const Address& address, Clock::time_point now = Clock::now());
  // Logs the summaries that are due and forgets quiet addresses; the bridge calls it every few
  // seconds, so a burst that stopped is still reported.
  void tick(Clock::time_point now = Clock::now());
  std::size_t addresses() const;

 private:
  struct Entry {
    std::uint32_t recent = 0;    // failures since the address was last quiet: the delay
    std::uint64_t unlogged = 0;  // failures not in a log line yet
    Clock::time_point last;      // latest failure
    Clock::time_point next_log;  // earliest time for the next summary line
  };
  void log_summary(const Address& address, Entry& entry, Clock::time_point now) const;
  void make_room(Clock::time_point now);

  Settings settings_;
  mutable std::mutex mutex_;
  std::unordered_map<Address, Entry> entries_;
};

}  // namespace dinodia::ha_bridge::detail
