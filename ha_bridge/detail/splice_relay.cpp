#include "ha_bridge/detail/splice_relay.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <memory>
#include <vector>

namespace dinodia::ha_bridge::detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kPipeBytes = 256 * 1024;  // a camera image in one or two batches
constexpr std::size_t kDefaultPipeBytes = std::size_t{64} * 1024;  // Linux's default
constexpr std::size_t kCopyBytes = std::size_t{64} * 1024;         // the fallback's buffer

// Waits until `socket` is ready for `what`, at most `timeout`. Single-threaded like the
// exchange: the timer's handler only touches the socket while the wait is still pending.
asio::awaitable<bool> wait_ready(tcp::socket& socket, tcp::socket::wait_type what,
                                 Clock::duration timeout, boost::system::error_code& error) {
  struct State {
    bool waiting = true;
    bool timed_out = false;
  };
  auto state = std::make_shared<State>();
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(timeout);
  timer.async_wait([state, &socket](boost::system::error_code ec) {
    if (ec || !state->waiting) return;
    state->timed_out = true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
  auto [ec] = co_await socket.async_wait(what, kTuple);
  state->waiting = false;
  timer.cancel();
  if (state->timed_out) ec = asio::error::timed_out;
  error = ec;
  co_return !ec;
}

// Where the bytes wait between the two sockets: a pipe (kernel pages, no copy) or, where splice
// is unavailable, a user-space buffer. Both answer like the system calls: >0 bytes moved,
// 0 end of stream (pull only), -1 with errno.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual ssize_t pull(int from, std::size_t max) = 0;
  virtual ssize_t push(int to, std::size_t max) = 0;
  virtual std::size_t capacity() const = 0;
};

class PipeStage final : public Stage {
 public:
  // Returns nullptr when no pipe can be made (out of descriptors): the caller copies instead.
  // A pipe costs five system calls to make and close; a worker keeps a few empty ones.
  static std::unique_ptr<PipeStage> open() {
    auto& spare = spares();
    if (!spare.empty()) {
      auto stage = std::move(spare.back());
      spare.pop_back();
      return stage;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
    auto stage = std::unique_ptr<PipeStage>(new PipeStage(fds[0], fds[1]));
    ::fcntl(fds[1], F_SETPIPE_SZ, kPipeBytes);  // best effort: the default 64 KiB also works
    const int size = ::fcntl(fds[1], F_GETPIPE_SZ);
    stage->capacity_ = size > 0 ? static_cast<std::size_t>(size) : kDefaultPipeBytes;
    return stage;
  }
  // Only an empty pipe may be reused: bytes left in it belong to an aborted body.
  static void recycle(std::unique_ptr<PipeStage> stage) {
    auto& spare = spares();
    if (spare.size() < kSparePipes) spare.push_back(std::move(stage));
  }
  ~PipeStage() override {
    ::close(read_);
    ::close(write_);
  }
  ssize_t pull(int from, std::size_t max) override {
    return ::splice(from, nullptr, write_, nullptr, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  }
  ssize_t push(int to, std::size_t max) override {
    return ::splice(read_, nullptr, to, nullptr, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  }
  std::size_t capacity() const override { return capacity_; }

 private:
  static constexpr std::size_t kSparePipes = 4;
  // Per thread: each worker runs its exchanges on one thread, so no lock is needed.
  static std::vector<std::unique_ptr<PipeStage>>& spares() {
    thread_local std::vector<std::unique_ptr<PipeStage>> pipes;
    return pipes;
  }
  PipeStage(int read, int write) : read_(read), write_(write) {}
  int read_;
  int write_;
  std::size_t capacity_ = 0;
};

class CopyStage final : public Stage {
 public:
  ssize_t pull(int from, std::size_t max) override {
    if (begin_ == end_) begin_ = end_ = 0;
    const ssize_t n =
        ::recv(from, buffer_.get() + end_, std::min(max, kCopyBytes - end_), MSG_DONTWAIT);
    if (n > 0) end_ += static_cast<std::size_t>(n);
    return n;
  }
  ssize_t push(int to, std::size_t max) override {
    const ssize_t n = ::send(to, buffer_.get() + begin_, std::min(max, end_ - begin_),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) begin_ += static_cast<std::size_t>(n);
    return n;
  }
  std::size_t capacity() const override { return kCopyBytes; }

 private:
  std::unique_ptr<char[]> buffer_{new char[kCopyBytes]};
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// True when the peer's FIN is next in the receive queue (nothing left to read before it).
bool peer_has_closed(int fd) {
  char byte = 0;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

boost::system::error_code last_error() {
  return {errno, boost::system::system_category()};
}

}  // namespace

asio::awaitable<MoveResult> move_bytes(tcp::socket& from, tcp::socket& to, std::uint64_t count,
                                       Clock::duration read_timeout, Clock::duration write_timeout,
                                       boost::system::error_code& error, bool use_splice) {
  std::unique_ptr<Stage> stage;
  if (use_splice) stage = PipeStage::open();
  if (!stage) stage = std::make_unique<CopyStage>();
  // Asio remembers the mode: asking again would cost an ioctl per body.
  boost::system::error_code ignored;
  if (!from.native_non_blocking()) from.native_non_blocking(true, ignored);
  if (!to.native_non_blocking()) to.native_non_blocking(true, ignored);

  std::uint64_t remaining = count;  // still to take from `from`
  std::size_t staged = 0;           // taken, not yet given to `to`
  bool pushed_any = false;
  while (remaining > 0 || staged > 0) {
    bool progressed = false;
    if (remaining > 0 && staged < stage->capacity()) {
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(remaining, stage->capacity() - staged));
      const ssize_t n = stage->pull(from.native_handle(), want);
      if (n > 0) {
        remaining -= static_cast<std::uint64_t>(n);
        staged += static_cast<std::size_t>(n);
        progressed = true;
      } else if (n == 0 && (staged > 0 || !peer_has_closed(from.native_handle()))) {
        // splice(2) from TCP also answers 0 when the pipe has no free slot left (slots, not
        // bytes, are what fill up): not an end of stream. Drain the pipe and try again.
      } else if (n == 0) {
        error = asio::error::eof;  // the body ended early
        co_return MoveResult::source_failed;
      } else if (errno == EINVAL && !pushed_any && staged == 0 &&
                 dynamic_cast<PipeStage*>(stage.get())) {
        stage = std::make_unique<CopyStage>();  // splice not supported for these sockets
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        error = last_error();
        co_return MoveResult::source_failed;
      }
    }
    if (staged > 0) {
      const ssize_t n = stage->push(to.native_handle(), staged);
      if (n > 0) {
        staged -= static_cast<std::size_t>(n);
        pushed_any = true;
        progressed = true;
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        error = n == 0 ? boost::system::error_code(asio::error::broken_pipe) : last_error();
        co_return MoveResult::sink_failed;
      }
    }
    if (progressed) continue;
    // Nothing moved: bytes waiting for `to` mean `to` is full; otherwise `from` has none yet.
    if (staged > 0) {
      if (!co_await wait_ready(to, tcp::socket::wait_write, write_timeout, error)) {
        co_return MoveResult::sink_failed;
      }
    } else if (!co_await wait_ready(from, tcp::socket::wait_read, read_timeout, error)) {
      co_return MoveResult::source_failed;
    }
  }
  if (dynamic_cast<PipeStage*>(stage.get()) != nullptr) {
    PipeStage::recycle(std::unique_ptr<PipeStage>(static_cast<PipeStage*>(stage.release())));
  }
  co_return MoveResult::done;
}

}  // namespace dinodia::ha_bridge::detail
