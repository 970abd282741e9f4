// A connected loopback TCP pair for unit tests of socket code: `inner` is the Asio socket the
// code under test works on, `outer` a plain descriptor the test drives (from a thread, with
// blocking send/recv, or closes to play a peer that went away). Header-only and Asio-bound, so
// only the few tests that already use Asio include it.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

namespace dinodia::test {

struct LoopbackPair {
  explicit LoopbackPair(boost::asio::io_context& ioc) : inner(ioc) {
    using tcp = boost::asio::ip::tcp;
    tcp::acceptor acceptor(ioc, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    tcp::socket client(ioc);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(inner);
    outer = client.release();
  }
  ~LoopbackPair() { close_outer(); }
  LoopbackPair(const LoopbackPair&) = delete;
  LoopbackPair& operator=(const LoopbackPair&) = delete;

  void close_outer() {
    if (outer >= 0) ::close(outer);
    outer = -1;
  }

  boost::asio::ip::tcp::socket inner;
  int outer = -1;
};

// Bytes that tell where they sit: a shifted or dropped byte shows as a mismatch. `seed` gives
// pieces of one stream different contents.
inline std::string pattern(std::size_t n, unsigned seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed + i / 977) & 0xff);
  return s;
}

// Blocking helpers for the `outer` side.
inline void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}
// Reads until `n` bytes arrived or the peer closed; returns what arrived.
inline std::string read_exactly(int fd, std::size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

}  // namespace dinodia::test
