// A connected loopback TCP pair for unit tests of socket code: `inner` is the Asio socket the
// code under test works on, `outer` a plain descriptor the test drives (from a thread, with
// blocking send/recv, or closes to play a peer that went away). Header-only and Asio-bound, so
// only the few tests that already use Asio include it.
#pragma once

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

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

}  // namespace dinodia::test
