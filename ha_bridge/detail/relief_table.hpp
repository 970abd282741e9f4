#pragma once
// Internal to ha_bridge: the kiosk-load relief's memory (docs/lan-bridge.md#kiosk-relief).
//
// One table for both workers, behind one mutex held only for a lookup or an update (a few
// string compares), so that identical requests join whichever worker took their connection.
// An entry is one upstream request: in flight, with the requests that joined it waiting; then,
// if its answer may be held, that answer until it is older than the window or anything it
// depends on moved (ReliefSignals). Memory is bounded: each held answer, and all of them
// together (in flight ones included from the moment their length is known).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ha_bridge/relief_signals.hpp"

namespace dinodia::ha_bridge::detail {

// An answer as the relay wrote it to the client that asked, without what it renders per client
// (the framing and Connection fields).
struct HeldAnswer {
  unsigned status = 0;
  std::string reason;  // Home Assistant's reason phrase (used for codes without a standard one)
  std::string fields;  // end-to-end fields as the relay renders them, Content-Length left out
  std::string body;
};

enum class ReliefOutcome {
  pending,
  answered,        // the answer is here: write it
  upstream_error,  // Home Assistant could not be reached: the relay's 502
  relay_yourself,  // the answer cannot be shared (a stream, too large, broken off): ask yourself
};

struct ReliefEntry;

// A request that joined an entry in flight: woken on its own worker's loop when the entry ends.
// Only the waiting coroutine owns it for long: it leaves the entry when it ends, so that the
// timer never outlives its loop (see ReliefTable::wait).
struct ReliefWaiter {
  explicit ReliefWaiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
  boost::asio::steady_timer timer;  // cancelled, on its own loop, when `outcome` is set
  std::shared_ptr<ReliefEntry> entry;
  // Set under the table's mutex; read by the waiter under it.
  ReliefOutcome outcome = ReliefOutcome::pending;
  std::shared_ptr<const HeldAnswer> answer;
};

class ReliefTable {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::chrono::milliseconds window{1000};  // 0: joining only
    std::size_t max_answer_bytes = std::size_t{4} * 1024 * 1024;
    std::size_t max_total_bytes = std::size_t{8} * 1024 * 1024;
    std::size_t max_entries = 1024;
  };

  ReliefTable(ReliefSignals& signals, Limits limits);
  ~ReliefTable();
  ReliefTable(const ReliefTable&) = delete;
  ReliefTable& operator=(const ReliefTable&) = delete;

  struct Found {
    enum class Kind { none, held, joined, lead } kind = Kind::none;
    std::shared_ptr<const HeldAnswer> answer;  // held
    std::shared_ptr<ReliefWaiter> waiter;      // joined: co_await wait(waiter)
    std::shared_ptr<ReliefEntry> entry;        // lead: the caller asks Home Assistant
  };
  // Looks `key` up at `now`: an answer to serve from memory, an entry in flight to join (the
  // waiter is woken on `executor`), or a new entry the caller leads. `none` when the table is
  // full of entries in flight.
  Found find(const std::string& key, unsigned depends, Clock::time_point now,
             const boost::asio::any_io_executor& executor);

  // Waits on the waiter's loop until its entry ends, at most `timeout` (then upstream_error, as
  // the relay's own timeout); `answer` is set when the outcome is `answered`.
  boost::asio::awaitable<ReliefOutcome> wait(std::shared_ptr<ReliefWaiter> waiter,
                                             std::chrono::steady_clock::duration timeout,
                                             std::shared_ptr<const HeldAnswer>& answer);

  // wait() for code written with callbacks (the WebSocket relay): `done` runs on the waiter's
  // loop once the entry ends or `timeout` passes, with the outcome and, if answered, the answer.
  using WaitDone = std::function<void(ReliefOutcome, std::shared_ptr<const HeldAnswer>)>;
  void wait_then(std::shared_ptr<ReliefWaiter> waiter, std::chrono::steady_clock::duration timeout,
                 WaitDone done);

  // The leader learnt the answer's size: whether it may be captured for the waiters (and held).
  // False: it is released to relay_yourself already.
  bool admit(const std::shared_ptr<ReliefEntry>& entry, std::size_t bytes);
  // The leader has the whole answer: the waiters get it, and a 2xx answer is held (if the
  // window is above 0 and the entry is still the newest for its key).
  void share(const std::shared_ptr<ReliefEntry>& entry, std::shared_ptr<const HeldAnswer> answer);
  // The leader ends without an answer to share; the waiters get `outcome`.
  void release(const std::shared_ptr<ReliefEntry>& entry, ReliefOutcome outcome);

  // Frees held answers older than the window or no longer servable (the maintenance tick and
  // the lookups call it).
  void sweep(Clock::time_point now);
  std::size_t held_bytes() const;

 private:
  void sweep_locked(Clock::time_point now, const ReliefSignals::Epochs& epochs);
  void drop_locked(const std::shared_ptr<ReliefEntry>& entry);
  void leave(ReliefWaiter& waiter);
  static void wake(std::vector<std::shared_ptr<ReliefWaiter>>& woken);
  void end_locked(ReliefEntry& entry, ReliefOutcome outcome,
                  const std::shared_ptr<const HeldAnswer>& answer,
                  std::vector<std::shared_ptr<ReliefWaiter>>& woken);
  bool servable(const ReliefEntry& entry, const ReliefSignals::Epochs& epochs,
                Clock::time_point now) const;

  ReliefSignals& signals_;
  const Limits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<ReliefEntry>> entries_;
  std::size_t reserved_bytes_ = 0;
  Clock::time_point next_sweep_{};
};

}  // namespace dinodia::ha_bridge::detail
