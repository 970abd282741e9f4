#pragma once
// Internal to ha_bridge: one connection's timeout, re-armed lazily.
//
// beast::tcp_stream arms and cancels a timer around every read and write; on the relay's hot
// path (a kiosk's once-a-second poll) that was a timer-queue update, a clock read and sometimes a
// timerfd_settime per operation. Here moving the deadline is a plain store: the timer is armed
// only when the new deadline is earlier than the one it waits for, and when it fires early it
// simply waits again for the current deadline. When a deadline passes, `on_expiry` runs (it
// cancels the connection's pending operations) and `expired()` stays true until the next
// `expires_after`, so the operation that was cut off can tell a timeout from other errors.
//
// Single-threaded: used only on the connection's own event loop.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace dinodia::ha_bridge::detail {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // `on_expiry` runs on the executor when a deadline passes.
  Deadline(const boost::asio::any_io_executor& executor, std::function<void()> on_expiry)
      : timer_(executor), on_expiry_(std::move(on_expiry)) {}
  // The object that owns this deadline: a pending timer wait holds it, so the owner outlives it.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  void expires_after(Clock::duration timeout) {
    expired_ = false;
    deadline_ = Clock::now() + timeout;
    if (deadline_ < armed_) arm(owner_.lock());
  }
  void expires_never() {
    expired_ = false;
    deadline_ = Clock::time_point::max();
  }
  bool expired() const { return expired_; }
  // Stops the timer for good (the connection is ending).
  void cancel() {
    deadline_ = Clock::time_point::max();
    armed_ = Clock::time_point::min();  // never re-armed
    timer_.cancel();
  }

 private:
  void arm(std::shared_ptr<void> keep_alive) {
    armed_ = deadline_;
    timer_.expires_at(armed_);
    timer_.async_wait([this, keep_alive = std::move(keep_alive)](boost::system::error_code ec) {
      if (ec) return;  // cancelled: re-armed earlier, or the connection ended
      on_timer(keep_alive);
    });
  }
  void on_timer(const std::shared_ptr<void>& keep_alive) {
    armed_ = Clock::time_point::max();
    if (deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) {
      arm(keep_alive);
      return;
    }
    deadline_ = Clock::time_point::max();
    expired_ = true;
    on_expiry_();
  }

  boost::asio::steady_timer timer_;
  std::function<void()> on_expiry_;
  std::weak_ptr<void> owner_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_ = Clock::time_point::max();  // what the timer waits for
  bool expired_ = false;
};

}  // namespace dinodia::ha_bridge::detail
