#include "ha_client/ha_connection.hpp"

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <future>
#include <map>

#include "common/log.hpp"
#include "ha_bridge/ws_credentials.hpp"
#include "ha_client/detail/open_websocket.hpp"
#include "ha_client/detail/random_below.hpp"
#include "ha_client/detail/ws_messages.hpp"

namespace dinodia::ha_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using json = nlohmann::json;
using detail::Strand;
using detail::WsStream;

namespace {
constexpr auto kAuthTimeout = std::chrono::seconds(10);
}  // namespace

struct HaConnection::Impl : std::enable_shared_from_this<HaConnection::Impl> {
  enum class Phase { idle, connecting, authenticating, ready, waiting, stopped };
  struct Pending {
    std::string type;
    JsonCallback callback;
    std::shared_ptr<asio::steady_timer> timer;
  };

  Impl(asio::io_context& io, HaClientConfig cfg, Handlers h)
      : strand(asio::make_strand(io)),
        config(std::move(cfg)),
        handlers(std::move(h)),
        reconnect_timer(strand),
        auth_timer(strand) {}

  Strand strand;
  HaClientConfig config;
  Handlers handlers;
  asio::steady_timer reconnect_timer;
  asio::steady_timer auth_timer;
  std::shared_ptr<WsStream> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> outq;
  bool writing = false;
  std::uint64_t gen = 0;
  Phase phase = Phase::idle;
  std::size_t token_index = 0;
  std::int64_t failures = 0;
  bool logged_waiting = false;
  std::int64_t next_id = 1000;
  std::map<std::int64_t, Pending> pending;
  std::atomic<bool> ready_flag{false};
  std::atomic<std::uint64_t> ready_count{0};

  // A log line: the tracker's own text, or "Home Assistant <name> connection <what>".
  std::string named(std::string_view tracker_line, std::string_view what) const {
    if (handlers.name.empty()) return std::string(tracker_line);
    return "Home Assistant " + handlers.name + " connection " + std::string(what);
  }

  void connect() {
    if (phase == Phase::stopped) return;
    const auto g = ++gen;
    phase = Phase::connecting;
    buffer.clear();
    outq.clear();
    writing = false;
    detail::open_websocket(
        strand, config,
        [self = shared_from_this(), g](const std::string& error, std::shared_ptr<WsStream> s) {
          if (g != self->gen || self->phase == Phase::stopped) {
            if (s) detail::close_websocket(*s);
            return;
          }
          if (!error.empty()) return self->fail("connect: " + error);
          self->ws = std::move(s);
          self->phase = Phase::authenticating;
          self->auth_timer.expires_after(kAuthTimeout);
          self->auth_timer.async_wait([self, g](beast::error_code ec) {
            if (ec || g != self->gen || self->phase != Phase::authenticating) return;
            self->fail("auth timeout");
          });
          self->read(g);
        });
  }

  void read(std::uint64_t g) {
    auto s = ws;
    s->async_read(buffer, asio::bind_executor(strand, [self = shared_from_this(), s, g](
                                                          beast::error_code ec, std::size_t) {
                    if (g != self->gen || self->phase == Phase::stopped) return;
                    if (ec) {
                      return self->fail(ec == websocket::error::closed ? "closed by Home Assistant"
                                                                       : ec.message());
                    }
                    const std::string text = beast::buffers_to_string(self->buffer.data());
                    self->buffer.consume(self->buffer.size());
                    const auto& on_frame = self->handlers.on_frame;
                    if (!on_frame || !on_frame(text)) {
                      detail::for_each_message(text, [&](const json& m) {
                        if (g == self->gen) self->on_message(m);
                      });
                    }
                    if (g == self->gen && self->phase != Phase::stopped) self->read(g);
                  }));
  }

  void on_message(const json& msg) {
    const std::string type = msg.value("type", "");
    if (type == "auth_required") {
      const auto index = ha_bridge::credential_for_auth(token_index, config.ws_tokens.size());
      if (!index) {
        log::warn(named("Heating usage WS auth failed: no HA auth token available",
                        "auth failed: no HA auth token available"));
        return fail("no token");
      }
      token_index = *index;
      send(ha_bridge::ws_auth_message(config.ws_tokens[token_index]));
    } else if (type == "auth_invalid") {
      log::warn(
          named("Heating usage WS auth_invalid", "auth_invalid"),
          log::Fields().add("message", msg.value("message", "")).add("tokenIndex", token_index));
      // The next credential, after the last one the first again (ws_credentials.hpp), with the
      // back-off growing through `failures`.
      token_index = ha_bridge::credential_after_rejection(token_index, config.ws_tokens.size());
      fail("auth_invalid");
    } else if (type == "auth_ok") {
      auth_timer.cancel();
      phase = Phase::ready;
      failures = 0;
      logged_waiting = false;
      ready_flag = true;
      ++ready_count;
      log::info(named("Home Assistant tracker connection ready", "ready"));
      if (handlers.on_ready) handlers.on_ready();
    } else if (type == "result") {
      if (!msg.contains("id") || !msg["id"].is_number_integer()) return;
      auto it = pending.find(msg["id"].get<std::int64_t>());
      if (it == pending.end()) return;
      Pending p = std::move(it->second);
      pending.erase(it);
      p.timer->cancel();
      if (msg.value("success", false)) {
        p.callback("", msg.contains("result") ? msg["result"] : json());
      } else {
        std::string e = detail::result_error_message(msg);
        p.callback(e.empty() ? "HA WS request failed" : e, json());
      }
    } else if (type == "event") {
      if (handlers.on_event && msg.contains("event") && msg["event"].is_object()) {
        handlers.on_event(msg["event"]);
      }
    }
  }

  void send(std::string text) {
    outq.push_back(std::move(text));
    if (!writing) write_next(gen);
  }

  void write_next(std::uint64_t g) {
    if (outq.empty() || !ws) {
      writing = false;
      return;
    }
    writing = true;
    auto s = ws;
    auto data = std::make_shared<std::string>(std::move(outq.front()));
    outq.pop_front();
    s->text(true);
    s->async_write(asio::buffer(*data),
                   asio::bind_executor(strand, [self = shared_from_this(), s, data, g](
                                                   beast::error_code ec, std::size_t) {
                     if (g != self->gen || self->phase == Phase::stopped) return;
                     if (ec) return self->fail(ec.message());
                     self->write_next(g);
                   }));
  }

  void fail_pending(const std::string& why) {
    auto all = std::move(pending);
    pending.clear();
    for (auto& [id, p] : all) {
      p.timer->cancel();
      p.callback(why, json());
    }
  }

  void close_socket() {
    if (!ws) return;
    detail::close_websocket(*ws);
    ws.reset();
  }

  void fail(const std::string& why) {
    if (phase == Phase::stopped) return;
    const bool was_ready = phase == Phase::ready;
    ++gen;
    ready_flag = false;
    if (was_ready && handlers.on_lost) handlers.on_lost();
    auth_timer.cancel();
    close_socket();
    fail_pending("HA WS disconnected");
    ++failures;
    const auto delay = reconnect_delay(config.reconnect, failures,
                                       detail::random_below(config.reconnect.jitter.count()));
    if (was_ready || !logged_waiting) {
      // One line per outage, not one per attempt while Core is starting.
      log::warn(
          named("Home Assistant tracker connection lost; reconnecting", "lost; reconnecting"),
          log::Fields().add("reason", why).add("inMs", static_cast<std::int64_t>(delay.count())));
      logged_waiting = true;
    }
    phase = Phase::waiting;
    reconnect_timer.expires_after(delay);
    reconnect_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->phase != Phase::waiting) return;
      self->connect();
    });
  }

  void stop() {
    if (phase == Phase::stopped) return;
    const bool was_ready = phase == Phase::ready;
    phase = Phase::stopped;
    if (was_ready && handlers.on_lost) handlers.on_lost();
    ++gen;
    ready_flag = false;
    reconnect_timer.cancel();
    auth_timer.cancel();
    if (ws) {
      // Best effort close frame; the socket is closed right after anyway.
      close_socket();
    }
    fail_pending("HA WS stopped");
  }

  void request(std::string type, json payload, JsonCallback cb, std::chrono::milliseconds timeout) {
    if (phase != Phase::ready) return cb("HA WS not connected", json());
    const std::int64_t id = next_id++;
    json msg = payload.is_object() ? std::move(payload) : json::object();
    msg["id"] = id;
    msg["type"] = type;
    auto timer = std::make_shared<asio::steady_timer>(strand);
    timer->expires_after(timeout);
    timer->async_wait([self = shared_from_this(), id](beast::error_code ec) {
      if (ec) return;
      auto it = self->pending.find(id);
      if (it == self->pending.end()) return;
      Pending p = std::move(it->second);
      self->pending.erase(it);
      p.callback("HA WS timeout waiting for " + p.type, json());
    });
    pending.emplace(id, Pending{std::move(type), std::move(cb), timer});
    send(msg.dump());
  }
};

HaConnection::HaConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HaConnection::~HaConnection() {
  if (impl_) asio::dispatch(impl_->strand, [impl = impl_] { impl->stop(); });
}

std::shared_ptr<HaConnection> HaConnection::create(asio::io_context& io, HaClientConfig config,
                                                   Handlers handlers) {
  return std::shared_ptr<HaConnection>(
      new HaConnection(std::make_unique<Impl>(io, std::move(config), std::move(handlers))));
}

void HaConnection::start() {
  asio::post(impl_->strand, [impl = impl_] {
    if (impl->phase == Impl::Phase::idle) impl->connect();
  });
}

void HaConnection::stop() {
  asio::dispatch(impl_->strand, [impl = impl_] { impl->stop(); });
}

bool HaConnection::stop_and_wait(std::chrono::milliseconds wait) {
  if (impl_->strand.running_in_this_thread()) {
    impl_->stop();
    return true;
  }
  if (impl_->strand.get_inner_executor().running_in_this_thread()) {
    stop();
    return false;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto stopped = done->get_future();
  asio::post(impl_->strand, [impl = impl_, done] {
    impl->stop();
    done->set_value();
  });
  return stopped.wait_for(wait) == std::future_status::ready;
}

bool HaConnection::ready() const {
  return impl_->ready_flag.load();
}
std::uint64_t HaConnection::ready_count() const {
  return impl_->ready_count.load();
}

void HaConnection::request(std::string type, json payload, JsonCallback callback,
                           std::optional<std::chrono::milliseconds> timeout) {
  const auto t = timeout.value_or(impl_->config.request_timeout);
  asio::post(impl_->strand, [impl = impl_, type = std::move(type), payload = std::move(payload),
                             callback = std::move(callback), t]() mutable {
    impl->request(std::move(type), std::move(payload), std::move(callback), t);
  });
}

}  // namespace dinodia::ha_client
