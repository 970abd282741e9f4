#include "ha_bridge/detail/relief_table.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "ha_bridge/detail/relief_request.hpp"

namespace dinodia::ha_bridge::detail {

namespace asio = boost::asio;
using Epochs = ReliefSignals::Epochs;

struct ReliefEntry {
  enum class State { in_flight, held, ended };
  std::string key;
  unsigned depends = 0;
  Epochs epochs;  // when its upstream request started
  ReliefTable::Clock::time_point started;
  State state = State::in_flight;
  std::shared_ptr<const HeldAnswer> answer;            // held
  std::vector<std::shared_ptr<ReliefWaiter>> waiters;  // in flight
  std::size_t reserved = 0;                            // bytes counted against the total
};

namespace {

// Nothing the entry's answer depends on has moved since its request started.
bool unchanged(const ReliefEntry& e, const Epochs& now) {
  return e.epochs.writes == now.writes &&
         (!(e.depends & kOnStates) || e.epochs.states == now.states) &&
         (!(e.depends & kOnRegistry) || e.epochs.registry == now.registry) &&
         (!(e.depends & kOnConfig) || e.epochs.config == now.config);
}

// Lookups sweep at most this often; the maintenance tick sweeps as well.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);

}  // namespace

ReliefTable::ReliefTable(ReliefSignals& signals, Limits limits)
    : signals_(signals), limits_(limits) {}

ReliefTable::~ReliefTable() = default;

bool ReliefTable::servable(const ReliefEntry& e, const Epochs& now, Clock::time_point at) const {
  return e.state == ReliefEntry::State::held && limits_.window.count() > 0 &&
         at - e.started <= limits_.window && ReliefSignals::stream_is_up(e.epochs.stream) &&
         e.epochs.stream == now.stream && unchanged(e, now);
}

ReliefTable::Found ReliefTable::find(const std::string& key, unsigned depends,
                                     Clock::time_point now, const asio::any_io_executor& executor) {
  Found found;
  std::lock_guard lock(mutex_);
  const Epochs epochs = signals_.now();
  if (now >= next_sweep_) {
    sweep_locked(now, epochs);
    next_sweep_ = now + kSweepInterval;
  }
  if (const auto it = entries_.find(key); it != entries_.end()) {
    const std::shared_ptr<ReliefEntry> entry = it->second;  // a copy: drop_locked erases it
    if (servable(*entry, epochs, now)) {
      found.kind = Found::Kind::held;
      found.answer = entry->answer;
      return found;
    }
    // Joining needs no event stream: both requests are on their way at once. A write or an
    // event since the first started makes its answer too old for the second.
    if (entry->state == ReliefEntry::State::in_flight && unchanged(*entry, epochs)) {
      found.kind = Found::Kind::joined;
      found.waiter = std::make_shared<ReliefWaiter>(executor);
      found.waiter->entry = entry;
      entry->waiters.push_back(found.waiter);
      return found;
    }
    drop_locked(entry);  // too old: the new request leads a fresh entry
  }
  if (entries_.size() >= limits_.max_entries) return found;
  auto entry = std::make_shared<ReliefEntry>();
  entry->key = key;
  entry->depends = depends;
  entry->epochs = epochs;
  entry->started = now;
  entries_.emplace(key, entry);
  found.kind = Found::Kind::lead;
  found.entry = std::move(entry);
  return found;
}

asio::awaitable<ReliefOutcome> ReliefTable::wait(std::shared_ptr<ReliefWaiter> waiter,
                                                 Clock::duration timeout,
                                                 std::shared_ptr<const HeldAnswer>& answer) {
  // Leaves the entry however the wait ends (the loop's destruction included), so that no leader
  // ever posts to a loop that is gone.
  struct Leave {
    ReliefTable& table;
    ReliefWaiter& waiter;
    ~Leave() { table.leave(waiter); }
  } leave{*this, *waiter};
  waiter->timer.expires_after(timeout);
  bool pending = false;
  {
    std::lock_guard lock(mutex_);
    pending = waiter->outcome == ReliefOutcome::pending;
  }
  // The leader's wake-up is posted to this loop, so it cannot run between the check above and
  // the wait below.
  if (pending) co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(mutex_);
  if (waiter->outcome == ReliefOutcome::pending) waiter->outcome = ReliefOutcome::upstream_error;
  answer = waiter->answer;
  co_return waiter->outcome;
}

void ReliefTable::wait_then(std::shared_ptr<ReliefWaiter> waiter, Clock::duration timeout,
                            WaitDone done) {
  const auto executor = waiter->timer.get_executor();
  asio::co_spawn(
      executor,
      [this, waiter = std::move(waiter), timeout,
       done = std::move(done)]() mutable -> asio::awaitable<void> {
        std::shared_ptr<const HeldAnswer> answer;
        const ReliefOutcome outcome = co_await wait(std::move(waiter), timeout, answer);
        done(outcome, std::move(answer));
      },
      asio::detached);
}

void ReliefTable::leave(ReliefWaiter& waiter) {
  std::lock_guard lock(mutex_);
  if (!waiter.entry) return;
  auto& list = waiter.entry->waiters;
  list.erase(
      std::remove_if(list.begin(), list.end(), [&](const auto& w) { return w.get() == &waiter; }),
      list.end());
  waiter.entry.reset();
}

bool ReliefTable::admit(const std::shared_ptr<ReliefEntry>& entry, std::size_t bytes) {
  std::vector<std::shared_ptr<ReliefWaiter>> woken;
  {
    std::lock_guard lock(mutex_);
    bool fits = bytes <= limits_.max_answer_bytes;
    if (fits && reserved_bytes_ + bytes > limits_.max_total_bytes) {
      sweep_locked(Clock::now(), signals_.now());
      fits = reserved_bytes_ + bytes <= limits_.max_total_bytes;
    }
    if (fits) {
      entry->reserved = bytes;
      reserved_bytes_ += bytes;
      return true;
    }
    end_locked(*entry, ReliefOutcome::relay_yourself, nullptr, woken);
    drop_locked(entry);
  }
  wake(woken);
  return false;
}

void ReliefTable::share(const std::shared_ptr<ReliefEntry>& entry,
                        std::shared_ptr<const HeldAnswer> answer) {
  std::vector<std::shared_ptr<ReliefWaiter>> woken;
  {
    std::lock_guard lock(mutex_);
    end_locked(*entry, ReliefOutcome::answered, answer, woken);
    const auto it = entries_.find(entry->key);
    const bool newest = it != entries_.end() && it->second == entry;
    if (newest && limits_.window.count() > 0 && answer->status >= 200 && answer->status < 300) {
      entry->state = ReliefEntry::State::held;
      const std::size_t size = answer->body.size() + answer->fields.size() + entry->key.size();
      reserved_bytes_ = reserved_bytes_ - entry->reserved + size;
      entry->reserved = size;
      entry->answer = std::move(answer);
    } else {
      drop_locked(entry);
    }
  }
  wake(woken);
}

void ReliefTable::release(const std::shared_ptr<ReliefEntry>& entry, ReliefOutcome outcome) {
  std::vector<std::shared_ptr<ReliefWaiter>> woken;
  {
    std::lock_guard lock(mutex_);
    end_locked(*entry, outcome, nullptr, woken);
    drop_locked(entry);
  }
  wake(woken);
}

void ReliefTable::end_locked(ReliefEntry& entry, ReliefOutcome outcome,
                             const std::shared_ptr<const HeldAnswer>& answer,
                             std::vector<std::shared_ptr<ReliefWaiter>>& woken) {
  if (entry.state != ReliefEntry::State::in_flight) return;
  entry.state = ReliefEntry::State::ended;
  for (auto& waiter : entry.waiters) {
    waiter->outcome = outcome;
    waiter->answer = answer;
    waiter->entry.reset();
    woken.push_back(std::move(waiter));
  }
  entry.waiters.clear();
}

// Each waiter's timer is cancelled on its own loop; the handler takes the only reference the
// leader had, so a waiter is destroyed on its own thread (or with its loop).
void ReliefTable::wake(std::vector<std::shared_ptr<ReliefWaiter>>& woken) {
  for (auto& waiter : woken) {
    const auto executor = waiter->timer.get_executor();
    asio::post(executor, [waiter = std::move(waiter)] { waiter->timer.cancel(); });
  }
  woken.clear();
}

void ReliefTable::drop_locked(const std::shared_ptr<ReliefEntry>& dropped) {
  // `dropped` may be the map's own element, which the erase below destroys.
  // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy keeps it alive
  const std::shared_ptr<ReliefEntry> entry = dropped;
  if (const auto it = entries_.find(entry->key); it != entries_.end() && it->second == entry) {
    entries_.erase(it);
  }
  // One in flight keeps what it reserved for its capture until its leader ends it.
  if (entry->state == ReliefEntry::State::in_flight) return;
  reserved_bytes_ -= entry->reserved;
  entry->reserved = 0;
  entry->answer.reset();
  entry->state = ReliefEntry::State::ended;
}

void ReliefTable::sweep(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  sweep_locked(now, signals_.now());
}

void ReliefTable::sweep_locked(Clock::time_point now, const Epochs& epochs) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto entry = it->second;
    ++it;
    if (entry->state == ReliefEntry::State::held && !servable(*entry, epochs, now)) {
      drop_locked(entry);
    }
  }
}

std::size_t ReliefTable::held_bytes() const {
  std::lock_guard lock(mutex_);
  return reserved_bytes_;
}

}  // namespace dinodia::ha_bridge::detail
