// The relief's own logged-in WebSocket (relief_upstream.hpp). Everything runs on one worker's
// loop, which one thread runs: no locks, no strand. It logs in as a relay session does (the same
// credentials in the same order, ws_credentials.hpp), so a result it is given is the one any
// session would be given, after the id (ws_relief_command.hpp).
#include "ha_bridge/detail/relief_upstream.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/detail/ws_relief_command.hpp"
#include "ha_bridge/detail/ws_upstream.hpp"
#include "ha_bridge/ws_credentials.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

using Clock = std::chrono::steady_clock;

// No ask for this long: the connection is closed (a kiosk in Home mode asks every second or
// two; a hub with none in Home mode keeps no connection for nothing).
constexpr std::chrono::seconds kIdleClose{60};
// An ask not answered within this (or the relay's upstream timeout, if shorter) means the
// connection is stuck: it is closed and every pending ask gets nothing.
constexpr std::chrono::seconds kAskTimeout{30};
// After Home Assistant refused every credential, asks get nothing at once for this long (each
// session then tries, and fails, on its own, as without the relief).
constexpr std::chrono::seconds kRefusedPause{30};

class Upstream final : public ReliefUpstream, public std::enable_shared_from_this<Upstream> {
 public:
  Upstream(const asio::any_io_executor& loop, BridgeContext& ctx)
      : loop_(loop), ctx_(ctx), resolver_(loop), timer_(loop) {}

  void ask(std::string type, Done done) override {
    asio::post(loop_, [self = shared_from_this(), type = std::move(type),
                       done = std::move(done)]() mutable {
      self->on_ask(std::move(type), std::move(done));
    });
  }

  void stop() override {
    asio::post(loop_, [self = shared_from_this()] {
      self->stopped_ = true;
      self->timer_.cancel();
      self->lose();
    });
  }

 private:
  struct Ask {
    std::string type;
    Done done;
    Clock::time_point deadline;
    std::uint64_t id = 0;  // on the current connection, once sent
  };

  void on_ask(std::string type, Done done) {
    const auto now = Clock::now();
    if (stopped_ || now < refused_until_) {
      done(std::nullopt);
      return;
    }
    const auto timeout = std::min<Clock::duration>(kAskTimeout, ctx_.config.upstream_timeout);
    asks_.push_back({std::move(type), std::move(done), now + timeout, 0});
    last_ask_ = now;
    if (!up_) {
      connect();
    } else if (logged_in_) {
      send_asks();
    }
    arm_timer();
  }

  // ---------------------------------------------------------------- connection and login

  void connect() {
    up_ = std::make_shared<WsUpstream>(loop_);
    logged_in_ = false;
    next_id_ = 1;
    login_deadline_ =
        Clock::now() + ctx_.config.upstream_connect_timeout + ctx_.config.ws_auth_timeout;
    open_ws_upstream(
        up_, ctx_, resolver_,
        [self = shared_from_this(), up = up_] { return up == self->up_ && !self->stopped_; },
        [self = shared_from_this(), up = up_](beast::error_code ec, const char* stage) {
          self->on_open(up, ec, stage);
        });
  }

  void on_open(const std::shared_ptr<WsUpstream>& up, beast::error_code ec, const char* stage) {
    if (up != up_) return;
    if (ec) {
      log::warn("Kiosk relief: Home Assistant connection for registry lists failed",
                log::Fields().add("stage", stage).add("error", ec.message()));
      lose();
      return;
    }
    up->open = true;
    read(up);
  }

  void read(const std::shared_ptr<WsUpstream>& up) {
    up->ws.async_read(up->buffer,
                      [self = shared_from_this(), up](beast::error_code ec, std::size_t) {
                        self->on_read(up, ec);
                      });
  }

  void on_read(const std::shared_ptr<WsUpstream>& up, beast::error_code ec) {
    if (up != up_) return;  // closed or replaced meanwhile
    if (ec) {
      // Home Assistant restarting closes every WebSocket: the next ask connects again.
      if (ec != beast::websocket::error::closed && ec != asio::error::operation_aborted) {
        log::info("Kiosk relief: Home Assistant connection for registry lists lost",
                  log::Fields().add("error", ec.message()));
      }
      lose();
      return;
    }
    const bool text = up->ws.got_text();
    const std::string frame = up->take_message();
    if (text) {
      if (logged_in_) {
        on_answer(frame);
      } else {
        on_login_frame(frame);
      }
    }
    if (up == up_) read(up);
  }

  void on_login_frame(const std::string& frame) {
    const std::string type = core_message_type(frame);
    const auto& tokens = ctx_.config.upstream_ws_tokens;
    if (type == "auth_required") {
      const auto index = credential_for_auth(token_index_, tokens.size());
      if (!index || tokens[*index].empty()) {
        refused();
        return;
      }
      send(ws_auth_message(tokens[*index]));
    } else if (type == "auth_ok") {
      logged_in_ = true;
      // Sessions may now be told they are logged in without a login of their own.
      if (ctx_.relief) ctx_.ws_auth_ok.remember(frame, ctx_.relief_signals.now().stream);
      send_asks();
    } else if (type == "auth_invalid") {
      if (const auto next = untried_credential_after_rejection(token_index_, tokens.size())) {
        token_index_ = *next;  // Core closes after auth_invalid: the next one on a new connection
        up_->close_socket();
        connect();
      } else {
        refused();
      }
    }
  }

  void refused() {
    log::warn("Kiosk relief: Home Assistant refused the WebSocket credentials for registry lists",
              log::Fields());
    token_index_ = 0;
    refused_until_ = Clock::now() + kRefusedPause;
    lose();
  }

  // ---------------------------------------------------------------- asks

  void send_asks() {
    for (auto& ask : asks_) {
      if (ask.id != 0) continue;
      ask.id = next_id_++;
      send(nlohmann::json{{"id", ask.id}, {"type", ask.type}}.dump());
    }
  }

  void on_answer(std::string_view frame) {
    const std::uint64_t id = answered_id(frame);
    for (auto it = asks_.begin(); it != asks_.end(); ++it) {
      if (it->id == 0 || it->id != id) continue;
      Done done = std::move(it->done);
      asks_.erase(it);
      done(ws_result_after_id(frame, id));
      return;
    }
  }

  // The id a frame answers: where Core writes it (ws_leading_id); a frame written otherwise is
  // parsed, so that an answer is never missed, only not shared.
  static std::uint64_t answered_id(std::string_view frame) {
    if (const auto id = ws_leading_id(frame)) return *id;
    const auto parsed = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object()) return 0;
    const auto it = parsed.find("id");
    return it != parsed.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
  }

  // Ends the connection, if any; every ask still pending gets nothing.
  void lose() {
    if (up_) up_->close_socket();
    forget_connection();
    auto pending = std::move(asks_);
    asks_.clear();
    for (auto& ask : pending) ask.done(std::nullopt);
  }

  // What belongs to the connection goes with it (its handlers see up_ changed and stop).
  void forget_connection() {
    up_.reset();
    logged_in_ = false;
    outgoing_.clear();
    writing_ = false;
  }

  // ---------------------------------------------------------------- writing

  void send(std::string frame) {
    outgoing_.push_back(std::move(frame));
    write_next();
  }

  void write_next() {
    if (writing_ || outgoing_.empty() || !up_) return;
    writing_ = true;
    up_->ws.text(true);
    up_->ws.async_write(asio::buffer(outgoing_.front()),
                        [self = shared_from_this(), up = up_](beast::error_code ec, std::size_t) {
                          if (up != self->up_) return;
                          self->writing_ = false;
                          self->outgoing_.pop_front();
                          if (ec) {
                            self->lose();
                            return;
                          }
                          self->write_next();
                        });
  }

  // ---------------------------------------------------------------- time

  // One timer: the login's deadline, the oldest ask's, and the idle close.
  void arm_timer() {
    if (timer_armed_ || stopped_) return;
    timer_armed_ = true;
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      self->timer_armed_ = false;
      if (!ec) self->on_timer();
    });
  }

  void on_timer() {
    if (stopped_) return;
    const auto now = Clock::now();
    if (up_ && !logged_in_ && now >= login_deadline_) {
      log::warn("Kiosk relief: Home Assistant did not log the registry-list connection in",
                log::Fields());
      lose();
    } else if (!asks_.empty() && now >= asks_.front().deadline) {
      log::warn("Kiosk relief: Home Assistant did not answer a registry list in time",
                log::Fields().add("type", asks_.front().type));
      lose();
    } else if (up_ && asks_.empty() && now - last_ask_ >= kIdleClose) {
      up_->close_started = true;
      up_->ws.async_close(
          beast::websocket::close_code::normal,
          [self = shared_from_this(), up = up_](beast::error_code) { up->close_socket(); });
      forget_connection();
    }
    if (up_ || !asks_.empty()) arm_timer();
  }

  asio::any_io_executor loop_;
  BridgeContext& ctx_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  bool stopped_ = false;

  std::shared_ptr<WsUpstream> up_;
  bool logged_in_ = false;
  std::size_t token_index_ = 0;
  Clock::time_point login_deadline_{};
  Clock::time_point refused_until_{};
  Clock::time_point last_ask_{};

  std::deque<Ask> asks_;
  std::uint64_t next_id_ = 1;
  std::deque<std::string> outgoing_;
  bool writing_ = false;
};

}  // namespace

std::shared_ptr<ReliefUpstream> ReliefUpstream::create(const asio::any_io_executor& loop,
                                                       BridgeContext& ctx) {
  return std::make_shared<Upstream>(loop, ctx);
}

}  // namespace dinodia::ha_bridge::detail
