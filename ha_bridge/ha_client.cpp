#include "ha_bridge/ha_client.hpp"

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <deque>
#include <map>
#include <random>

#include "common/log.hpp"
#include "common/text.hpp"

namespace dinodia::ha_bridge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Strand = asio::strand<asio::io_context::executor_type>;
using WsStream = websocket::stream<beast::tcp_stream>;

namespace {

constexpr auto kAuthTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(60);  // pings keep a quiet socket alive
constexpr std::size_t kMaxMessageBytes = std::size_t{64} * 1024 * 1024;

std::int64_t random_below(std::int64_t bound) {
  if (bound <= 0) return 0;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<std::int64_t>(0, bound - 1)(rng);
}

// Resolve, connect and upgrade; `done(error, stream)`. The HTTP status of a declined upgrade
// becomes "Unexpected server response: <status>" (the Supervisor answers 502 while Core
// starts), like the legacy agent's `ws` library reports it.
void open_websocket(const Strand& strand, const HaClientConfig& config,
                    std::function<void(std::string, std::shared_ptr<WsStream>)> done) {
  auto resolver = std::make_shared<tcp::resolver>(strand);
  auto ws = std::make_shared<WsStream>(strand);
  auto res = std::make_shared<websocket::response_type>();
  const std::string host = config.upstream.host;
  const std::string host_header = config.upstream.host_header();
  const std::string target = config.upstream.core_path("/api/websocket");
  const std::string token = config.supervisor_token;
  const auto connect_timeout = config.connect_timeout;
  resolver->async_resolve(
      host, std::to_string(config.upstream.port),
      [resolver, ws, res, host_header, target, token, connect_timeout, done = std::move(done)](
          beast::error_code ec, const tcp::resolver::results_type& results) {
        if (ec) return done(ec.message(), nullptr);
        beast::get_lowest_layer(*ws).expires_after(connect_timeout);
        beast::get_lowest_layer(*ws).async_connect(results, [ws, res, host_header, target, token,
                                                             connect_timeout,
                                                             done](beast::error_code cec,
                                                                   const tcp::endpoint&) {
          if (cec) {
            return done(cec == beast::error::timeout ? "ha_ws_timeout" : cec.message(), nullptr);
          }
          beast::get_lowest_layer(*ws).expires_never();
          websocket::stream_base::timeout t{};
          t.handshake_timeout = connect_timeout;
          t.idle_timeout = kIdleTimeout;
          t.keep_alive_pings = true;
          ws->set_option(t);
          ws->read_message_max(kMaxMessageBytes);
          ws->set_option(websocket::stream_base::decorator([token](websocket::request_type& r) {
            if (!token.empty()) r.set(http::field::authorization, "Bearer " + token);
            r.set(http::field::user_agent, "dinodia-hub-agent");
          }));
          ws->async_handshake(*res, host_header, target, [ws, res, done](beast::error_code hec) {
            if (hec == websocket::error::upgrade_declined) {
              return done("Unexpected server response: " + std::to_string(res->result_int()),
                          nullptr);
            }
            if (hec) {
              return done(hec == beast::error::timeout ? "ha_ws_timeout" : hec.message(), nullptr);
            }
            done("", ws);
          });
        });
      });
}

// HA may coalesce several messages into one JSON array frame.
template <typename F>
void for_each_message(const std::string& text, F&& f) {
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_array()) {
    for (const auto& m : parsed) {
      if (m.is_object()) f(m);
    }
  } else if (parsed.is_object()) {
    f(parsed);
  }
}

std::string result_error_message(const json& msg) {
  if (msg.contains("error") && msg["error"].is_object()) {
    const auto& e = msg["error"];
    if (e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  }
  return {};
}

}  // namespace

// --- HaConnection --------------------------------------------------------------------------

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

  void connect() {
    if (phase == Phase::stopped) return;
    const auto g = ++gen;
    phase = Phase::connecting;
    buffer.clear();
    outq.clear();
    writing = false;
    open_websocket(
        strand, config,
        [self = shared_from_this(), g](const std::string& error, std::shared_ptr<WsStream> s) {
          if (g != self->gen || self->phase == Phase::stopped) {
            if (s) {
              beast::error_code ignored;
              beast::get_lowest_layer(*s).socket().close(ignored);
            }
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
                    for_each_message(text, [&](const json& m) {
                      if (g == self->gen) self->on_message(m);
                    });
                    if (g == self->gen && self->phase != Phase::stopped) self->read(g);
                  }));
  }

  void on_message(const json& msg) {
    const std::string type = msg.value("type", "");
    if (type == "auth_required") {
      const auto index = credential_for_auth(token_index, config.ws_tokens.size());
      if (!index) {
        log::warn("Heating usage WS auth failed: no HA auth token available");
        return fail("no token");
      }
      token_index = *index;
      send(json{{"type", "auth"}, {"access_token", config.ws_tokens[token_index]}}.dump());
    } else if (type == "auth_invalid") {
      log::warn(
          "Heating usage WS auth_invalid",
          log::Fields().add("message", msg.value("message", "")).add("tokenIndex", token_index));
      // Try the next credential; after the last one start over from the first (legacy §17 31:
      // the index is not stuck forever), with back-off growing through `failures`.
      token_index = credential_after_rejection(token_index, config.ws_tokens.size());
      fail("auth_invalid");
    } else if (type == "auth_ok") {
      auth_timer.cancel();
      phase = Phase::ready;
      failures = 0;
      logged_waiting = false;
      ready_flag = true;
      ++ready_count;
      log::info("Home Assistant tracker connection ready");
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
        std::string e = result_error_message(msg);
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
    beast::error_code ignored;
    beast::get_lowest_layer(*ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(*ws).socket().close(ignored);
    ws.reset();
  }

  void fail(const std::string& why) {
    if (phase == Phase::stopped) return;
    const bool was_ready = phase == Phase::ready;
    ++gen;
    ready_flag = false;
    auth_timer.cancel();
    close_socket();
    fail_pending("HA WS disconnected");
    ++failures;
    const auto delay =
        reconnect_delay(config.reconnect, failures, random_below(config.reconnect.jitter.count()));
    if (was_ready || !logged_waiting) {
      // One line per outage, not one per attempt while Core is starting.
      log::warn(
          "Home Assistant tracker connection lost; reconnecting",
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
    phase = Phase::stopped;
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

// --- One-shot command ----------------------------------------------------------------------

namespace {

class OneShot : public std::enable_shared_from_this<OneShot> {
 public:
  OneShot(asio::io_context& io, HaClientConfig config, json command, JsonCallback cb)
      : strand_(asio::make_strand(io)),
        config_(std::move(config)),
        command_(std::move(command)),
        callback_(std::move(cb)),
        timer_(strand_) {}

  void run(std::chrono::milliseconds timeout) {
    asio::dispatch(strand_, [self = shared_from_this(), timeout] {
      if (self->config_.ws_tokens.empty()) return self->finish("ha_ws_auth_missing", json());
      self->timer_.expires_after(timeout);
      self->timer_.async_wait([self](beast::error_code ec) {
        if (!ec) self->finish("ha_ws_timeout", json());
      });
      open_websocket(self->strand_, self->config_,
                     [self](const std::string& error, std::shared_ptr<WsStream> ws) {
                       if (self->done_) {
                         if (ws) {
                           beast::error_code ignored;
                           beast::get_lowest_layer(*ws).socket().close(ignored);
                         }
                         return;
                       }
                       if (!error.empty()) return self->finish(error, json());
                       self->ws_ = std::move(ws);
                       self->read();
                     });
    });
  }

 private:
  void read() {
    // The read is bound to its connection: after auth_invalid the next credential gets a new
    // connection (and its own read), and this one must not go on reading a closed stream.
    auto ws = ws_;
    ws->async_read(buffer_, asio::bind_executor(strand_, [self = shared_from_this(), ws](
                                                             beast::error_code ec, std::size_t) {
                     if (self->done_ || ws != self->ws_) return;
                     if (ec) {
                       return self->finish(ec == websocket::error::closed ||
                                                   ec == asio::error::eof ||
                                                   ec == asio::error::connection_reset
                                               ? "ha_ws_closed"
                                               : ec.message(),
                                           json());
                     }
                     const std::string text = beast::buffers_to_string(self->buffer_.data());
                     self->buffer_.consume(self->buffer_.size());
                     for_each_message(text, [&](const json& m) {
                       if (ws == self->ws_) self->on_message(m);
                     });
                     if (!self->done_ && ws == self->ws_) self->read();
                   }));
  }

  void on_message(const json& msg) {
    if (done_) return;
    const std::string type = msg.value("type", "");
    if (type == "auth_required") {
      write(json{{"type", "auth"}, {"access_token", config_.ws_tokens[token_index_]}}.dump());
    } else if (type == "auth_invalid") {
      // The connection is closed by HA after auth_invalid; legacy tries the next token on a
      // socket that is about to close, so a second token practically never gets a chance.
      // A new connection per token is what actually works.
      const auto next = untried_credential_after_rejection(token_index_, config_.ws_tokens.size());
      if (!next) return finish("ha_ws_auth_invalid", json());
      token_index_ = *next;
      reconnect_with_next_token();
    } else if (type == "auth_ok") {
      json cmd = command_;
      cmd["id"] = id_;
      write(cmd.dump());
    } else if (type == "result" && msg.contains("id") && msg["id"] == id_) {
      if (msg.value("success", false))
        return finish("", msg.contains("result") ? msg["result"] : json());
      const std::string e = result_error_message(msg);
      finish(e.empty() ? "ha_ws_result_error" : "ha_ws_result_error:" + e, json());
    }
  }

  void reconnect_with_next_token() {
    close();
    open_websocket(
        strand_, config_,
        [self = shared_from_this()](const std::string& error, std::shared_ptr<WsStream> ws) {
          if (self->done_) return;
          if (!error.empty()) return self->finish(error, json());
          self->ws_ = std::move(ws);
          self->buffer_.clear();
          self->read();
        });
  }

  void write(std::string text) {
    auto data = std::make_shared<std::string>(std::move(text));
    auto ws = ws_;
    ws->text(true);
    // At most two writes per connection, never concurrent: auth, then the command after
    // auth_ok (which HA only sends once it has read the auth message).
    ws->async_write(asio::buffer(*data),
                    asio::bind_executor(strand_, [self = shared_from_this(), data, ws](
                                                     beast::error_code ec, std::size_t) {
                      if (ec && !self->done_ && ws == self->ws_) self->finish(ec.message(), json());
                    }));
  }

  void close() {
    if (!ws_) return;
    beast::error_code ignored;
    beast::get_lowest_layer(*ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(*ws_).socket().close(ignored);
    ws_.reset();
  }

  void finish(std::string error, json value) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    close();
    auto cb = std::move(callback_);
    cb(std::move(error), std::move(value));
  }

  Strand strand_;
  HaClientConfig config_;
  json command_;
  JsonCallback callback_;
  asio::steady_timer timer_;
  std::shared_ptr<WsStream> ws_;
  beast::flat_buffer buffer_;
  std::size_t token_index_ = 0;
  std::int64_t id_ = 1 + random_below(1'000'000);
  bool done_ = false;
};

// --- REST ----------------------------------------------------------------------------------

class RestCall : public std::enable_shared_from_this<RestCall> {
 public:
  using Done = std::function<void(std::string, HttpReply)>;
  RestCall(asio::io_context& io, const HaClientConfig& config, http::verb method,
           const std::string& target, std::string body, Done done)
      : strand_(asio::make_strand(io)),
        resolver_(strand_),
        stream_(strand_),
        host_(config.upstream.host),
        port_(std::to_string(config.upstream.port)),
        done_(std::move(done)) {
    req_.method(method);
    req_.target(target);
    req_.version(11);
    req_.set(http::field::host, config.upstream.host_header());
    req_.set(http::field::authorization, "Bearer " + config.supervisor_token);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::user_agent, "dinodia-hub-agent");
    req_.keep_alive(false);
    if (method != http::verb::get) {
      req_.body() = std::move(body);
      req_.prepare_payload();
    }
  }

  void run(std::chrono::milliseconds timeout) {
    asio::dispatch(strand_, [self = shared_from_this(), timeout] {
      self->deadline_ = std::chrono::steady_clock::now() + timeout;
      self->guard_.emplace(self->strand_);
      self->guard_->expires_at(self->deadline_);
      self->guard_->async_wait([self](beast::error_code ec) {
        if (!ec) {
          self->timed_out_ = true;
          beast::error_code ignored;
          self->stream_.socket().close(ignored);
          self->resolver_.cancel();
        }
      });
      self->resolver_.async_resolve(
          self->host_, self->port_,
          [self](beast::error_code ec, const tcp::resolver::results_type& results) {
            if (ec) return self->finish(ec);
            self->stream_.expires_at(self->deadline_);
            self->stream_.async_connect(
                results, [self](beast::error_code cec, const tcp::endpoint&) {
                  if (cec) return self->finish(cec);
                  http::async_write(
                      self->stream_, self->req_, [self](beast::error_code wec, std::size_t) {
                        if (wec) return self->finish(wec);
                        self->parser_.body_limit(std::uint64_t{16} * 1024 * 1024);
                        http::async_read(
                            self->stream_, self->buffer_, self->parser_,
                            [self](beast::error_code rec, std::size_t) { self->finish(rec); });
                      });
                });
          });
    });
  }

 private:
  void finish(beast::error_code ec) {
    if (finished_) return;
    finished_ = true;
    if (guard_) guard_->cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    if (timed_out_ || ec == beast::error::timeout) return done_("timeout", {});
    if (ec) return done_(ec.message(), {});
    auto& res = parser_.get();
    done_("", HttpReply{static_cast<int>(res.result_int()), res.body()});
  }

  Strand strand_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::string host_;
  std::string port_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  std::optional<asio::steady_timer> guard_;
  std::chrono::steady_clock::time_point deadline_;
  bool timed_out_ = false;
  bool finished_ = false;
  Done done_;
};

}  // namespace

void ws_command_once(asio::io_context& io, const HaClientConfig& config, std::string type,
                     json payload, std::chrono::milliseconds timeout, JsonCallback callback) {
  json command = payload.is_object() ? std::move(payload) : json::object();
  command["type"] = std::move(type);
  auto shot = std::make_shared<OneShot>(io, config, std::move(command), std::move(callback));
  shot->run(timeout);
}

void supervisor_request(asio::io_context& io, const HaClientConfig& config,
                        const std::string& method, const std::string& target, std::string body,
                        std::chrono::milliseconds timeout,
                        std::function<void(std::string, HttpReply)> callback) {
  auto call = std::make_shared<RestCall>(io, config, http::string_to_verb(method), target,
                                         std::move(body), std::move(callback));
  call->run(timeout);
}

namespace {
void post_error(asio::io_context& io, JsonCallback cb, std::string error) {
  asio::post(io, [cb = std::move(cb), error = std::move(error)] { cb(error, json()); });
}

// GETs `target` through the Supervisor and hands `callback` the parsed body. A missing
// Supervisor token, a transport error, a non-2xx status, or a body that is not JSON (with
// `object_only`: not a JSON object, reported as `invalid`) is the error instead.
void get_json(asio::io_context& io, const HaClientConfig& config, const std::string& target,
              std::chrono::milliseconds timeout, bool object_only, const char* invalid,
              JsonCallback callback) {
  if (config.supervisor_token.empty()) {
    return post_error(io, std::move(callback), "supervisor_token_missing");
  }
  supervisor_request(io, config, "GET", target, "", timeout,
                     [callback = std::move(callback), object_only, invalid](
                         const std::string& error, const HttpReply& reply) {
                       if (!error.empty()) return callback(error, json());
                       if (reply.status < 200 || reply.status > 299) {
                         return callback("status " + std::to_string(reply.status), json());
                       }
                       json parsed = json::parse(reply.body, nullptr, false);
                       if (object_only ? !parsed.is_object() : parsed.is_discarded()) {
                         return callback(invalid, json());
                       }
                       callback("", std::move(parsed));
                     });
}
}  // namespace

void get_network_info(asio::io_context& io, const HaClientConfig& config, JsonCallback callback) {
  get_json(io, config, config.upstream.path_prefix + "/network/info",
           std::chrono::milliseconds(2500), /*object_only=*/false, "invalid JSON",
           std::move(callback));
}

void get_state(asio::io_context& io, const HaClientConfig& config, const std::string& entity_id,
               JsonCallback callback) {
  get_json(io, config, config.upstream.core_path("/api/states/" + encode_uri_component(entity_id)),
           std::chrono::milliseconds(10000), /*object_only=*/true, "invalid state JSON",
           std::move(callback));
}

void call_service(asio::io_context& io, const HaClientConfig& config, const std::string& domain,
                  const std::string& service, const json& data, JsonCallback callback) {
  if (config.supervisor_token.empty()) {
    return post_error(io, std::move(callback), "supervisor_token_missing");
  }
  const std::string d(text::trim(domain));
  const std::string s(text::trim(service));
  if (d.empty() || s.empty()) return post_error(io, std::move(callback), "invalid_service");
  supervisor_request(
      io, config, "POST",
      config.upstream.core_path("/api/services/" + encode_uri_component(d) + "/" +
                                encode_uri_component(s)),
      data.dump(), config.request_timeout,
      [callback = std::move(callback)](const std::string& error, const HttpReply& reply) {
        if (!error.empty()) return callback(error == "timeout" ? "ha_ws_timeout" : error, json());
        if (reply.status < 200 || reply.status > 299) {
          std::string e = "ha_service_error:" + std::to_string(reply.status);
          const std::string body(text::trim(reply.body));
          if (!body.empty()) e += ":" + body;
          return callback(e, json());
        }
        json parsed = json::parse(reply.body, nullptr, false);
        callback("", parsed.is_discarded() ? json() : std::move(parsed));
      });
}

std::string encode_uri_component(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '!' || c == '~' || c == '*' ||
        c == '\'' || c == '(' || c == ')') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace dinodia::ha_bridge
