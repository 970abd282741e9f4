// move_bytes (ha_bridge/detail/splice_relay): the kernel-side body relay for large responses,
// over real loopback TCP connections, with splice and with the user-space fallback.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include "ha_bridge/detail/splice_relay.hpp"
#include "tests/support/loopback_pair.hpp"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using dinodia::ha_bridge::detail::move_bytes;
using dinodia::ha_bridge::detail::MoveResult;
using namespace std::chrono_literals;

using Pair = dinodia::test::LoopbackPair;

using dinodia::test::pattern;
using dinodia::test::read_exactly;
using dinodia::test::write_all;

struct Outcome {
  MoveResult result = MoveResult::done;
  boost::system::error_code error;
  std::chrono::milliseconds took{0};
};

Outcome run_move(asio::io_context& ioc, Pair& from, Pair& to, std::uint64_t count, bool use_splice,
                 std::chrono::milliseconds read_timeout = 5s,
                 std::chrono::milliseconds write_timeout = 5s) {
  Outcome outcome;
  std::optional<MoveResult> result;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(ioc,
                 move_bytes(from.inner, to.inner, count, read_timeout, write_timeout, outcome.error,
                            use_splice),
                 [&](std::exception_ptr e, MoveResult r) {
                   if (e) std::rethrow_exception(e);
                   result = r;
                 });
  ioc.restart();
  ioc.run();
  outcome.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  REQUIRE(result.has_value());
  outcome.result = *result;
  return outcome;
}

}  // namespace

TEST_CASE("move_bytes relays exactly the count and leaves the next bytes unread") {
  const bool use_splice = GENERATE(true, false);
  INFO("splice: " << use_splice);
  asio::io_context ioc;
  Pair from(ioc), to(ioc);
  const std::size_t count = 3 * 1024 * 1024 + 123;  // more than the pipe and socket buffers
  const std::string body = pattern(count);
  const std::string next_request = "NEXT-RESPONSE";
  std::thread writer([&] {
    write_all(from.outer, body.substr(0, 100000));
    std::this_thread::sleep_for(50ms);  // the source stalls once: the relay waits for it
    write_all(from.outer, body.substr(100000) + next_request);
  });
  std::string received;
  std::thread reader([&] { received = read_exactly(to.outer, count); });

  const auto outcome = run_move(ioc, from, to, count, use_splice);
  writer.join();
  reader.join();
  CHECK(outcome.result == MoveResult::done);
  CHECK(!outcome.error);
  REQUIRE(received.size() == count);
  CHECK(received == body);
  // What follows the body is still in the source connection, for its next user.
  char rest[64] = {};
  const ssize_t n = ::recv(from.inner.native_handle(), rest, sizeof rest, MSG_DONTWAIT);
  CHECK(std::string(rest, n > 0 ? static_cast<std::size_t>(n) : 0) == next_request);
}

TEST_CASE("move_bytes: a source that ends early is a source failure") {
  const bool use_splice = GENERATE(true, false);
  asio::io_context ioc;
  Pair from(ioc), to(ioc);
  std::thread writer([&] {
    write_all(from.outer, pattern(200000));
    from.close_outer();
  });
  std::thread reader([&] { read_exactly(to.outer, 200000); });
  const auto outcome = run_move(ioc, from, to, 500000, use_splice);
  writer.join();
  reader.join();
  CHECK(outcome.result == MoveResult::source_failed);
  CHECK(outcome.error == asio::error::eof);
}

TEST_CASE("move_bytes: a source that stalls is cut off after the read timeout") {
  const bool use_splice = GENERATE(true, false);
  asio::io_context ioc;
  Pair from(ioc), to(ioc);
  write_all(from.outer, pattern(1000));
  std::thread reader([&] { read_exactly(to.outer, 1000); });
  const auto outcome = run_move(ioc, from, to, 5000, use_splice, 300ms, 5s);
  reader.join();
  CHECK(outcome.result == MoveResult::source_failed);
  CHECK(outcome.error == asio::error::timed_out);
  CHECK(outcome.took >= 290ms);
  CHECK(outcome.took < 3s);
}

namespace {
// Feeds `fd` without blocking until told to stop (the relay may stop reading at any point).
class Feeder {
 public:
  Feeder(int fd, std::size_t count)
      : thread_([this, fd, count] {
          const std::string block = pattern(65536);
          std::size_t sent = 0;
          while (!stop_ && sent < count) {
            const ssize_t n = ::send(fd, block.data(), std::min(block.size(), count - sent),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
              sent += static_cast<std::size_t>(n);
            } else {
              std::this_thread::sleep_for(1ms);
            }
          }
        }) {}
  ~Feeder() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};
}  // namespace

TEST_CASE("move_bytes: a sink that stops reading is cut off after the write timeout") {
  const bool use_splice = GENERATE(true, false);
  INFO("splice: " << use_splice);
  asio::io_context ioc;
  Pair from(ioc), to(ioc);
  const std::size_t count = 32 * 1024 * 1024;  // far more than the buffers between us and it
  Feeder feeder(from.outer, count);
  const auto outcome = run_move(ioc, from, to, count, use_splice, 5s, 300ms);
  CHECK(outcome.result == MoveResult::sink_failed);
  CHECK(outcome.error == asio::error::timed_out);
  CHECK(outcome.took < 4s);
}

TEST_CASE("move_bytes: a sink that closes is a sink failure") {
  const bool use_splice = GENERATE(true, false);
  INFO("splice: " << use_splice);
  // splice(2) into a socket cannot be told MSG_NOSIGNAL; the agent ignores SIGPIPE (agent.cpp),
  // and so does this test.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc;
  Pair from(ioc), to(ioc);
  to.close_outer();
  const std::size_t count = 32 * 1024 * 1024;  // more than one write can hand to the kernel
  Feeder feeder(from.outer, count);
  const auto outcome = run_move(ioc, from, to, count, use_splice);
  CHECK(outcome.result == MoveResult::sink_failed);
  CHECK((outcome.error == asio::error::broken_pipe ||
         outcome.error == asio::error::connection_reset));
}

namespace {
std::size_t open_descriptors() {
  std::size_t n = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) ++n;
  }
  return n;
}
}  // namespace

TEST_CASE("move_bytes: pipes are reused, never with bytes of an aborted body in them") {
  // A worker keeps a few empty pipes between bodies. One that still held bytes of a body whose
  // sink failed would hand them to the next client: this must never happen.
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc;
  {
    Pair from(ioc), to(ioc);
    to.close_outer();
    Feeder feeder(from.outer, 4 * 1024 * 1024);
    const auto failed = run_move(ioc, from, to, 4 * 1024 * 1024, true);
    REQUIRE(failed.result == MoveResult::sink_failed);
  }
  const std::size_t descriptors_before = open_descriptors();
  for (int body = 0; body < 20; ++body) {
    Pair from(ioc), to(ioc);
    const std::size_t count = 300000 + static_cast<std::size_t>(body) * 7919;
    const std::string data = pattern(count);
    std::thread writer([&] { write_all(from.outer, data); });
    std::string received;
    std::thread reader([&] { received = read_exactly(to.outer, count); });
    const auto outcome = run_move(ioc, from, to, count, true);
    writer.join();
    reader.join();
    REQUIRE(outcome.result == MoveResult::done);
    REQUIRE(received.size() == count);
    REQUIRE(received == data);  // no stale bytes in front, nothing missing
  }
  // Twenty bodies later the process holds at most the few spare pipes it keeps.
  CHECK(open_descriptors() <= descriptors_before + 8);
}
