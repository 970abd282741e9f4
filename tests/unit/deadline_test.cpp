// Deadline (ha_bridge/detail/deadline): a connection's lazily re-armed timeout, on a real event
// loop and real time.
#include "ha_bridge/detail/deadline.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>

using dinodia::ha_bridge::detail::Deadline;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

struct Clocked {
  asio::io_context ioc;
  std::shared_ptr<int> owner = std::make_shared<int>(0);
  int expiries = 0;
  std::chrono::steady_clock::time_point expired_at{};
  Deadline deadline{ioc.get_executor(), [this] {
                      ++expiries;
                      expired_at = std::chrono::steady_clock::now();
                    }};
  Clocked() { deadline.set_owner(owner); }
  // Runs the loop for `d`, doing `action` `at` into it.
  template <class F>
  void run_for(std::chrono::milliseconds d, std::chrono::milliseconds at, F action) {
    asio::steady_timer timer(ioc, at);
    timer.async_wait([&](boost::system::error_code) { action(); });
    ioc.restart();
    ioc.run_for(d);
  }
  void run_for(std::chrono::milliseconds d) {
    run_for(d, d, [] {});
  }
};

}  // namespace

TEST_CASE("Deadline: passes once, after its timeout, and says so") {
  Clocked c;
  const auto start = std::chrono::steady_clock::now();
  c.deadline.expires_after(100ms);
  CHECK_FALSE(c.deadline.expired());
  c.run_for(400ms);
  CHECK(c.expiries == 1);
  CHECK(c.deadline.expired());
  CHECK(c.expired_at - start >= 100ms);
  c.deadline.expires_after(1h);  // a new deadline clears the verdict
  CHECK_FALSE(c.deadline.expired());
}

TEST_CASE("Deadline: moved later, it waits for the later time (re-armed lazily)") {
  Clocked c;
  const auto start = std::chrono::steady_clock::now();
  c.deadline.expires_after(100ms);
  // At 50 ms the deadline moves to 300 ms: the timer still fires at 100 ms, finds the deadline
  // not reached and waits again.
  c.run_for(200ms, 50ms, [&] { c.deadline.expires_after(250ms); });
  CHECK(c.expiries == 0);
  c.run_for(300ms);
  CHECK(c.expiries == 1);
  CHECK(c.expired_at - start >= 300ms);
}

TEST_CASE("Deadline: moved earlier, it re-arms for the earlier time") {
  Clocked c;
  const auto start = std::chrono::steady_clock::now();
  c.deadline.expires_after(1h);
  c.deadline.expires_after(100ms);
  c.run_for(400ms);
  CHECK(c.expiries == 1);
  CHECK(c.expired_at - start < 350ms);
}

TEST_CASE("Deadline: expires_never and cancel stop it") {
  SECTION("never") {
    Clocked c;
    c.deadline.expires_after(100ms);
    c.deadline.expires_never();
    c.run_for(300ms);
    CHECK(c.expiries == 0);
    CHECK_FALSE(c.deadline.expired());
  }
  SECTION("cancelled for good") {
    Clocked c;
    c.deadline.expires_after(100ms);
    c.deadline.cancel();
    c.deadline.expires_after(50ms);  // after cancel: never armed again
    c.run_for(300ms);
    CHECK(c.expiries == 0);
  }
}

TEST_CASE("Deadline: a pending wait keeps its owner alive") {
  Clocked c;
  std::weak_ptr<int> watched = c.owner;
  c.deadline.expires_after(100ms);
  c.owner.reset();
  CHECK_FALSE(watched.expired());  // the timer's wait holds it
  c.run_for(300ms);
  CHECK(watched.expired());
}
