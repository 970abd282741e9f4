// write_gathered (ha_bridge/detail/write_gathered.hpp): a gathered write offered to the socket at
// once, with what does not fit written asynchronously. Over real loopback TCP connections: the
// bytes must arrive whole and in order however the kernel splits the write, and a peer that went
// away must come back as an error, not a signal or a hang.
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ha_bridge/detail/upstream_pool.hpp"
#include "ha_bridge/detail/write_gathered.hpp"
#include "tests/support/loopback_pair.hpp"

namespace {

namespace asio = boost::asio;
using dinodia::ha_bridge::detail::ClientConnection;
using dinodia::ha_bridge::detail::UpstreamPool;
using dinodia::ha_bridge::detail::WaitingExchanges;
using namespace std::chrono_literals;

using dinodia::test::pattern;
using dinodia::test::read_exactly;

struct Fixture {
  asio::io_context ioc;
  dinodia::test::LoopbackPair pair{ioc};
  UpstreamPool pool{4, std::chrono::seconds(30)};
  WaitingExchanges waiting;
  // ClientConnection takes the socket; `pair.inner` is moved into it.
  ClientConnection client{std::move(pair.inner), pool, waiting};

  // Runs write_gathered(client, client.socket) over `pieces` to completion.
  std::tuple<boost::system::error_code, std::size_t> write(const std::vector<std::string>& pieces) {
    client.gather.clear();
    for (const auto& p : pieces) client.gather.push_back(asio::buffer(p));
    std::optional<std::tuple<boost::system::error_code, std::size_t>> result;
    asio::co_spawn(ioc, dinodia::ha_bridge::detail::write_gathered(client, client.socket),
                   [&](std::exception_ptr e, std::tuple<boost::system::error_code, std::size_t> r) {
                     if (e) std::rethrow_exception(e);
                     result = r;
                   });
    ioc.restart();
    ioc.run();
    REQUIRE(result.has_value());
    return *result;
  }
};

}  // namespace

TEST_CASE("a small gathered write arrives whole, in order", "[gathered_write]") {
  Fixture f;
  const std::vector<std::string> pieces{"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n",
                                        R"({"message":"API running."})"};
  auto [ec, n] = f.write(pieces);
  CHECK_FALSE(ec);
  CHECK(n == pieces[0].size() + pieces[1].size());
  CHECK(read_exactly(f.pair.outer, n) == pieces[0] + pieces[1]);
}

TEST_CASE("a gathered write larger than the send buffer: the rest follows, in order",
          "[gathered_write]") {
  Fixture f;
  // A small send buffer and a reader that starts late: the first attempt can only write part,
  // possibly ending inside any of the pieces.
  const int small = 16 * 1024;
  REQUIRE(::setsockopt(f.client.socket.native_handle(), SOL_SOCKET, SO_SNDBUF, &small,
                       sizeof small) == 0);
  const std::vector<std::string> pieces{pattern(100, 1), pattern(3 * 1024 * 1024 + 7, 2),
                                        pattern(1, 3), pattern(777 * 1024, 4)};
  std::string expected;
  for (const auto& p : pieces) expected += p;
  std::string received;
  std::thread reader([&] {
    std::this_thread::sleep_for(200ms);
    received = read_exactly(f.pair.outer, expected.size());
  });
  auto [ec, n] = f.write(pieces);
  reader.join();
  CHECK_FALSE(ec);
  CHECK(n == expected.size());
  CHECK(received.size() == expected.size());
  CHECK(received == expected);
}

TEST_CASE("a gathered write to a peer that went away fails with an error", "[gathered_write]") {
  Fixture f;
  f.pair.close_outer();
  // The first bytes may still be taken by the kernel before the reset comes back; a few large
  // writes must end in an error (EPIPE or a reset), never SIGPIPE or a hang.
  boost::system::error_code ec;
  for (int i = 0; i < 20 && !ec; ++i) {
    std::tie(ec, std::ignore) = f.write({pattern(1024 * 1024, 5)});
    std::this_thread::sleep_for(10ms);
  }
  CHECK(ec);
}
