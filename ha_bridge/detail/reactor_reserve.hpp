#pragma once
// Internal to ha_bridge: Asio's reactor keeps the state of every socket it has had open (about
// 170 bytes each) for the next socket and frees none until the loop is destroyed. States first
// made during a burst come from the accepting thread's heap, interleaved with that burst's
// short-lived objects, and each one left a page resident after the burst had closed. Made here,
// at start, they sit together and a burst only reuses them
// (docs/hostile-clients.md#memory-after-a-burst).
#include <cstddef>

namespace boost::asio {
class io_context;
}

namespace dinodia::ha_bridge::detail {

// Opens `sockets` sockets on `io` at once and closes them, so that its reactor holds that many
// states for later sockets. Stops early, without error, when no more descriptors are to be had.
// Call before the loop runs.
void reserve_reactor_states(boost::asio::io_context& io, std::size_t sockets);

}  // namespace dinodia::ha_bridge::detail
