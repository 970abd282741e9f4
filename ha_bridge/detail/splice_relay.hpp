#pragma once
// Internal to ha_bridge: moves a known number of body bytes from one TCP socket to another
// inside the kernel (splice(2) through a pipe), for large Content-Length bodies such as camera
// images. Relaying through user space costs two extra copies of every byte on top of the two
// the kernel makes anyway; on a small hub that copy is most of what a 256 KiB image costs.
// Falls back to a plain read/write loop where splice is not supported. splice(2) into a socket
// cannot be given MSG_NOSIGNAL: the process must ignore SIGPIPE (the agent does, agent.cpp).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>

namespace dinodia::ha_bridge::detail {

enum class MoveResult {
  done,           // every byte arrived at `to`
  source_failed,  // `from` ended, failed or stalled for longer than its timeout
  sink_failed,    // `to` failed or did not drain for longer than its timeout
};

// Moves exactly `count` bytes from `from` to `to`. Waits are bounded: `from` must deliver
// something within `read_timeout` of each wait, `to` must accept something within
// `write_timeout`. `error` tells what went wrong when the result is not `done`. Bytes after
// the first `count` stay unread in `from` (the connection may be reused). `use_splice` false
// forces the user-space copy (tests cover both).
boost::asio::awaitable<MoveResult> move_bytes(boost::asio::ip::tcp::socket& from,
                                              boost::asio::ip::tcp::socket& to, std::uint64_t count,
                                              std::chrono::steady_clock::duration read_timeout,
                                              std::chrono::steady_clock::duration write_timeout,
                                              boost::system::error_code& error,
                                              bool use_splice = true);

}  // namespace dinodia::ha_bridge::detail
