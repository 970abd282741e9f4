#pragma once
// Internal to ha_bridge: every live client connection (HTTP session or WebSocket relay), for
// shutdown and for the connection limits (docs/hostile-clients.md). Touched when a connection
// opens, proves a hub token for the first time, or closes; never per request.
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace dinodia::ha_bridge::detail {

// Every live connection registers a closer here so that shutdown can close what is still open
// after the grace period, and so that a new connection can take the place of the oldest one
// that never authenticated. Closers run on any thread and must post to their own strand.
class ConnectionTracker {
 public:
  using Closer = std::function<void()>;
  using Address = boost::asio::ip::address;

  struct Limits {
    std::size_t total = 0;        // 0 = no limit
    std::size_t per_address = 0;  // 0 = no limit
  };
  void set_limits(Limits limits);

  // What admit() decided for a new connection.
  enum class Admission { admitted, admitted_after_eviction, refused_address, refused_full };
  // Called by the acceptor before a new connection starts. At the total limit, the oldest
  // connection that has not authenticated is closed to make room; only when every connection
  // has authenticated (or an eviction burst is already pending) is the new one refused. A
  // client address at its own limit is refused.
  Admission admit(const Address& address);

  // `close` closes the connection at once. `on_stopping` (optional) is called when shutdown
  // begins: an HTTP session closes if it is idle and stops keeping the connection alive.
  // `admitted`: the connection is the one admit() made room for (and counted) on the acceptor's
  // thread before its session started on a worker's.
  std::uint64_t add(Closer close, Closer on_stopping = {}, const Address& address = {},
                    bool admitted = false);
  // The connection proved a hub token: it is no longer a candidate for eviction.
  void mark_authenticated(std::uint64_t id);
  void remove(std::uint64_t id);
  void notify_stopping();
  void close_all();
  std::size_t size() const;
  std::size_t addresses() const;  // distinct client addresses with a live connection
  std::uint64_t closed() const { return closed_.load(std::memory_order_relaxed); }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void set_stopping() { stopping_.store(true, std::memory_order_release); }

 private:
  struct Entry {
    Closer close;
    Closer on_stopping;
    Address address;
    bool authenticated = false;
    bool evicting = false;
  };
  mutable std::mutex mutex_;
  // Ordered by id, which grows with age: the oldest unauthenticated entry is found from the
  // front, skipping the few authenticated ones.
  std::map<std::uint64_t, Entry> closers_;
  std::unordered_map<Address, std::size_t> per_address_;
  std::size_t evicting_ = 0;
  std::size_t admitted_ = 0;  // admitted, their sessions not started yet
  Limits limits_;
  std::uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> closed_{0};  // removals so far
};

}  // namespace dinodia::ha_bridge::detail
