// WaitingExchanges (ha_bridge/detail/waiting_exchanges) and the client watch it arms
// (detail/client_watch.cpp), on a real event loop with real loopback sockets: only an exchange that
// has waited a whole tick is watched; a watched client that goes away closes the upstream
// connection; bytes it sends meanwhile are kept for the next request.
#include "ha_bridge/detail/waiting_exchanges.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "ha_bridge/detail/client_connection.hpp"
#include "tests/support/loopback_pair.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using dinodia::ha_bridge::detail::ClientConnection;
using dinodia::ha_bridge::detail::UpstreamPool;
using dinodia::ha_bridge::detail::WaitingExchanges;
using namespace std::chrono_literals;

namespace {

using Pair = dinodia::test::LoopbackPair;

struct Loop {
  Loop() {
    waiting.bind(ioc);
    connection = std::make_unique<ClientConnection>(std::move(client.inner), pool, waiting);
    connection->set_owner(session);
    connection->watch.max_buffered = 4096;
    connection->upstream = &upstream.inner;
  }
  ~Loop() {
    waiting.remove(*connection);
    waiting.unbind();
  }
  void run_for(std::chrono::milliseconds d) {
    ioc.restart();
    ioc.run_for(d);
  }

  WaitingExchanges waiting;
  asio::io_context ioc;
  UpstreamPool pool{0, 1s};
  Pair client{ioc};
  Pair upstream{ioc};
  std::shared_ptr<int> session = std::make_shared<int>(0);
  std::unique_ptr<ClientConnection> connection;
};

}  // namespace

TEST_CASE("an exchange is watched only once it has waited a whole tick") {
  Loop loop;
  loop.waiting.add(*loop.connection);
  loop.run_for(WaitingExchanges::kTick / 2);
  CHECK_FALSE(loop.connection->watch.pending);
  loop.run_for(3 * WaitingExchanges::kTick);
  CHECK(loop.connection->watch.pending);
  CHECK(loop.connection->waiting_slot == WaitingExchanges::kNotWaiting);
}

TEST_CASE("an exchange answered within the tick is never watched") {
  Loop loop;
  loop.waiting.add(*loop.connection);
  loop.run_for(WaitingExchanges::kTick / 5);
  loop.waiting.remove(*loop.connection);
  loop.run_for(4 * WaitingExchanges::kTick);
  CHECK_FALSE(loop.connection->watch.pending);
}

TEST_CASE("a watched client that goes away closes the upstream connection") {
  Loop loop;
  loop.waiting.add(*loop.connection);
  loop.run_for(3 * WaitingExchanges::kTick);
  REQUIRE(loop.connection->watch.pending);
  loop.client.close_outer();
  loop.run_for(100ms);
  CHECK(loop.connection->watch.gone);
  CHECK_FALSE(loop.connection->watch.pending);
  CHECK_FALSE(loop.upstream.inner.is_open());
}

TEST_CASE("bytes a watched client sends meanwhile are kept, and the watch goes on") {
  Loop loop;
  loop.waiting.add(*loop.connection);
  loop.run_for(3 * WaitingExchanges::kTick);
  REQUIRE(loop.connection->watch.pending);
  const std::string next = "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(loop.client.outer, next.data(), next.size(), 0) ==
          static_cast<ssize_t>(next.size()));
  loop.run_for(100ms);
  CHECK(loop.connection->buffer.readable() == next);
  CHECK(loop.connection->watch.pending);
  CHECK_FALSE(loop.connection->watch.gone);
  CHECK(loop.upstream.inner.is_open());
}

TEST_CASE("several waiting exchanges: each is watched, removal in any order keeps the list right") {
  asio::io_context ioc;
  WaitingExchanges waiting;
  waiting.bind(ioc);
  UpstreamPool pool{0, 1s};
  auto session = std::make_shared<int>(0);
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<ClientConnection>> connections;
  for (int i = 0; i < 5; ++i) {
    pairs.push_back(std::make_unique<Pair>(ioc));
    connections.push_back(
        std::make_unique<ClientConnection>(std::move(pairs.back()->inner), pool, waiting));
    connections.back()->set_owner(session);
    connections.back()->watch.max_buffered = 4096;
    waiting.add(*connections.back());
  }
  waiting.remove(*connections[1]);
  waiting.remove(*connections[4]);
  waiting.remove(*connections[4]);  // twice: harmless
  ioc.run_for(4 * WaitingExchanges::kTick);
  CHECK(connections[0]->watch.pending);
  CHECK_FALSE(connections[1]->watch.pending);
  CHECK(connections[2]->watch.pending);
  CHECK(connections[3]->watch.pending);
  CHECK_FALSE(connections[4]->watch.pending);
  waiting.unbind();
}
