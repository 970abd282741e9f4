// The WebSocket relay at /api/websocket: one upstream connection to Core (through the
// Supervisor's proxy) per authenticated client, with the legacy handshake as the client sees it
// and the fixes docs/compatibility.md lists (bounded pre-auth buffering, auth timeout,
// byte-exact frames, close-code propagation, pings, bounded send queues, supervisor/ and
// hassio/ commands refused).
//
// Authentication comes first, as in the Supervisor's own proxy (docs/lan-bridge.md, "Before
// authentication"): the relay greets the client with Home Assistant's last auth_required
// (AuthRequiredCache) and connects upstream only once the client has proved a hub token. Until
// then a client may hold a few KiB, counted against a budget for the whole bridge.
//
// With the kiosk-load relief on, a session whose client proved a hub token is told it is logged
// in with Home Assistant's own auth_ok as last seen (AuthOkCache) and reaches Home Assistant only
// when it asks something the relief cannot answer from memory: the kiosk's one-shot session
// (auth, one registry list, close) then costs Home Assistant no login at all
// (docs/lan-bridge.md#one-shot-websocket-sessions).
//
// Messages move the same way in both directions (ws_peer.hpp): what one side reads is queued on
// the other, and pump() writes each side's queue in order (docs/lan-bridge.md#throughput).
//
// Concurrency: both streams, the timers and every handler run on the single thread of the
// worker that accepted the client (its io_context runs on that one thread: an implicit strand),
// so the relay's state needs no locks and no explicit strand. Code on other threads (shutdown)
// reaches the relay by posting to that loop. Pending I/O operations hold a shared_ptr to the relay;
// timers hold only a weak_ptr, so the relay (and its stats slot) goes away as soon as the last I/O
// completes.
#include "ha_bridge/detail/ws_relay.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket.hpp>

#include "common/log.hpp"
#include "ha_bridge/detail/relief_request.hpp"
#include "ha_bridge/detail/relief_upstream.hpp"
#include "ha_bridge/detail/ws_command_filter.hpp"
#include "ha_bridge/detail/ws_peer.hpp"
#include "ha_bridge/detail/ws_relief_command.hpp"
#include "ha_bridge/detail/ws_upstream.hpp"
#include "ha_bridge/detail/ws_write_tracker.hpp"
#include "ha_bridge/hub_access.hpp"
#include "ha_bridge/ws_credentials.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

namespace websocket = beast::websocket;
// The worker's loop, run by one thread (see above).
using Loop = asio::any_io_executor;
using Clock = std::chrono::steady_clock;

// How long a close handshake may take before the sockets are simply closed.
constexpr std::chrono::seconds kCloseLinger{5};
// Just after start, how often a client waiting for Home Assistant's greeting looks again.
constexpr std::chrono::milliseconds kGreetingPoll{20};

const char* const kInvalidHubToken = R"({"type":"auth_invalid","message":"Invalid hub token."})";
const char* const kMissingHaToken =
    R"({"type":"auth_invalid","message":"Hub agent is missing HA auth token."})";

std::atomic<std::uint64_t> g_next_session{1};

using Outgoing = WsPeer::Outgoing;

class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(tcp::socket client_socket, const asio::ip::address& peer, const Loop& loop,
        std::shared_ptr<BridgeContext> ctx)
      : peer_(peer),
        loop_(loop),
        ctx_(std::move(ctx)),
        client_(beast::tcp_stream(std::move(client_socket))),
        resolver_(loop),
        auth_timer_(loop),
        linger_timer_(loop),
        greeting_timer_(loop),
        id_(g_next_session.fetch_add(1)) {
    ctx_->stats.ws_sessions.fetch_add(1, std::memory_order_relaxed);
    ctx_->stats.ws_sessions_active.fetch_add(1, std::memory_order_relaxed);
  }

  ~Relay() {
    if (relieved_login_ && !upstream_) {
      ctx_->stats.relief_ws_sessions_without_login.fetch_add(1, std::memory_order_relaxed);
    }
    stop_learning();
    release_preauth_budget();
    if (tracker_id_ != 0) ctx_->connections.remove(tracker_id_);
    ctx_->stats.ws_sessions_active.fetch_sub(1, std::memory_order_relaxed);
    log::debug("WS session ended", log::Fields().add("session", static_cast<std::int64_t>(id_)));
  }

  void start(const http::request<http::empty_body>& upgrade) {
    std::weak_ptr<Relay> weak = weak_from_this();
    // Shutdown first asks for a clean 1001 close on both sides; after the grace period it
    // closes the sockets.
    tracker_id_ = ctx_->connections.add(
        [weak, loop = loop_] {
          asio::post(loop, [weak] {
            if (auto self = weak.lock()) self->hard_close_all();
          });
        },
        [weak, loop = loop_] {
          asio::post(loop, [weak] {
            if (auto self = weak.lock()) self->shutdown_for_stop();
          });
        },
        peer_);
    if (ctx_->connections.stopping()) {
      hard_close_all();
      return;
    }
    const auto& cfg = ctx_->config;
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = cfg.ws_auth_timeout;
    // Pings come from the relay's keep-alive (arm_keep_alive), not Beast's idle timer.
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    client_.ws.set_option(timeouts);
    client_.ws.auto_fragment(false);
    // Until the client has proved a hub token, nothing but a small auth message is expected.
    client_.ws.read_message_max(std::min(cfg.ws_max_message_from_client, cfg.ws_preauth_max_bytes));
    client_.ws.async_accept(
        upgrade, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

 private:
  // ---------------------------------------------------------------- client side

  void on_accept(beast::error_code ec) {
    if (ec) {
      log::debug("WS handshake with client failed", fields().add("error", ec.message()));
      hard_close_all();
      return;
    }
    client_.open = true;
    arm_keep_alive(client_side(), Clock::now() + ctx_->config.ws_ping_interval);
    auth_timer_.expires_after(ctx_->config.ws_auth_timeout);
    auth_timer_.async_wait([weak = weak_from_this()](beast::error_code timer_ec) {
      auto self = weak.lock();
      if (timer_ec || !self) return;
      self->on_auth_timeout();
    });
    read_client();
    greet_client();
  }

  // The client's auth_required: Home Assistant's own message as last seen, with no upstream
  // connection. Only while none has been seen yet does one client at a time connect upstream
  // before authenticating, to learn it; the others look again shortly.
  void greet_client() {
    if (auth_required_forwarded_ || upstream_ || ending_) return;
    if (std::string greeting = ctx_->ws_auth_required.get(); !greeting.empty()) {
      auth_required_forwarded_ = true;
      send_to_client(std::move(greeting), false);
      return;
    }
    if (ctx_->ws_auth_required.try_begin_learning()) {
      learning_ = true;
      connect_upstream();
      return;
    }
    greeting_timer_.expires_after(kGreetingPoll);
    greeting_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      self->greet_client();
    });
  }

  void stop_learning() {
    if (!learning_) return;
    learning_ = false;
    ctx_->ws_auth_required.end_learning();
  }

  void release_preauth_budget() {
    ctx_->ws_preauth_budget.give_back(preauth_budget_held_);
    preauth_budget_held_ = 0;
  }

  void on_auth_timeout() {
    if (authed_ || ending_) return;
    if (client_auth_ok_) {
      // Logged in from memory, but Home Assistant did not take the login made for a later
      // command in time.
      log::warn("WS upstream login timed out", fields());
      end_session({websocket::close_code::internal_error, "Upstream unavailable"},
                  {websocket::close_code::going_away, ""});
      return;
    }
    log::debug("WS client did not authenticate in time", fields());
    end_session({websocket::close_code::policy_error, "Authentication timeout"},
                {websocket::close_code::going_away, ""});
  }

  void read_client() {
    if (client_.reading || client_read_done_) return;
    client_.reading = true;
    client_.ws.async_read(client_.buffer,
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            self->on_client_read(ec);
                          });
  }

  void on_client_read(beast::error_code ec) {
    client_.reading = false;
    if (ec) {
      if (client_.timed_out) ec = beast::error::timeout;
      client_read_done_ = true;
      client_.open = false;
      if (ec == websocket::error::closed) {
        // The client closed: Core gets the same code and reason.
        end_session({}, client_.ws.reason());
      } else {
        if (ec != asio::error::operation_aborted) {
          log::debug("WS client read ended", fields().add("error", ec.message()));
        }
        client_.close_socket();
        end_session({}, {websocket::close_code::going_away, ""});
      }
      return;
    }
    const bool binary = client_.ws.got_binary();
    std::string data = client_.take_message();

    if (!ending_) on_client_message(std::move(data), binary);
    if (ending_) return;
    // Back-pressure: stop reading the client while Core is not taking what we already have.
    if (upstream_ && upstream_->queued_bytes > ctx_->config.ws_client_send_queue_bytes) {
      client_read_paused_ = true;
      return;
    }
    read_client();
  }

  void on_client_message(std::string data, bool binary) {
    if (refusing_) return;
    ClientFrameVerdict verdict;
    if (!binary) verdict = inspect_client_text(data, ctx_->config.allow_hassio_domain);
    if (verdict.action == ClientFrameVerdict::Action::client_auth) {
      on_client_auth(verdict.access_token);
      return;
    }
    if (verdict.action == ClientFrameVerdict::Action::refuse) {
      log::info("WS client sent a frame that is not JSON the bridge can read; closing", fields());
      end_session({websocket::close_code::bad_payload, "Invalid JSON"},
                  {websocket::close_code::going_away, ""});
      return;
    }
    if (!client_auth_ok_) {
      buffer_until_login(std::move(data), binary);
      return;
    }
    on_logged_in_client_frame(std::move(data), binary, std::move(verdict));
  }

  // 0.4.17 buffers until Core's auth_ok, without bounds; the bounds are the fix
  // (docs/compatibility.md#w7): small until the hub token is proved, and a budget for all such
  // clients together.
  void buffer_until_login(std::string data, bool binary) {
    const auto& cfg = ctx_->config;
    const std::size_t max_messages =
        hub_token_ok_ ? cfg.ws_pending_max_messages : cfg.ws_preauth_max_messages;
    const std::size_t max_bytes =
        hub_token_ok_ ? cfg.ws_pending_max_bytes : cfg.ws_preauth_max_bytes;
    if (preauth_.size() + 1 > max_messages || preauth_bytes_ + data.size() > max_bytes) {
      log::warn("WS client sent too much before authentication",
                fields().add("messages", preauth_.size() + 1));
      end_session({websocket::close_code::policy_error, "Too many messages before authentication"},
                  {websocket::close_code::going_away, ""});
      return;
    }
    if (!hub_token_ok_) {
      if (!ctx_->ws_preauth_budget.try_take(data.size())) {
        log::warn("WS pre-authentication budget exhausted; closing a client", fields());
        end_session({websocket::close_code::try_again_later, "Too busy"},
                    {websocket::close_code::going_away, ""});
        return;
      }
      preauth_budget_held_ += data.size();
    }
    preauth_bytes_ += data.size();
    preauth_.push_back({std::move(data), binary, false, {}});
  }

  // A frame from a client that has its auth_ok: answered by the relief while the session has no
  // upstream connection and the frame is a command the relief knows, else sent to Home Assistant
  // (after logging in there first if the auth_ok came from memory).
  void on_logged_in_client_frame(std::string data, bool binary, ClientFrameVerdict verdict) {
    if (relieved_login_ && !upstream_ && !binary &&
        verdict.action == ClientFrameVerdict::Action::forward_original &&
        verdict.local_replies.empty()) {
      if (auto command = ws_relief_command(data)) {
        relieve(*command, std::move(data));
        return;
      }
    }
    to_upstream(std::move(data), binary, std::move(verdict));
  }

  void to_upstream(std::string data, bool binary, ClientFrameVerdict verdict) {
    if (!upstream_) connect_upstream_after_relieved_login();
    if (!authed_) {
      // Home Assistant has not yet taken this session's login: the frame waits for it.
      buffer_until_login(std::move(data), binary);
      return;
    }
    forward_client_frame(std::move(data), binary, std::move(verdict));
  }

  void forward_client_frame(std::string data, bool binary, ClientFrameVerdict verdict) {
    for (auto& reply : verdict.local_replies) send_to_client(std::move(reply), false);
    switch (verdict.action) {
      case ClientFrameVerdict::Action::forward_original:
        if (!binary) track_write(data);
        send_upstream(std::move(data), binary);
        break;
      case ClientFrameVerdict::Action::forward_rewritten:
        track_write(verdict.rewritten);
        send_upstream(std::move(verdict.rewritten), false);
        break;
      case ClientFrameVerdict::Action::drop:
      case ClientFrameVerdict::Action::client_auth:
      case ClientFrameVerdict::Action::refuse:
        break;
    }
  }

  void on_client_auth(const std::string& access_token) {
    // Every auth message is checked, even a late one on an authenticated session, as 0.4.17 did
    // (docs/compatibility.md#websocket).
    if (!hub_token_accepted(ctx_->tokens.get(), access_token)) {
      // Counted per address, summarised in the log once a minute, and answered late once the
      // address has failed a few times (docs/hostile-clients.md).
      const auto pause = ctx_->auth_failures.failed(peer_);
      if (pause.count() == 0) {
        refuse_client_auth();
        return;
      }
      refusing_ = true;  // whatever the client sends meanwhile is dropped
      auth_timer_.expires_after(pause);
      auth_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
        auto self = weak.lock();
        if (!ec && self) self->refuse_client_auth();
      });
      return;
    }
    if (!hub_token_ok_) {
      hub_token_ok_ = true;
      ctx_->connections.mark_authenticated(tracker_id_);
      // What the client sent before is now an authenticated client's: off the shared budget.
      release_preauth_budget();
      client_.ws.read_message_max(
          std::min(ctx_->config.ws_max_message_from_client, ctx_->config.ws_pending_max_bytes));
      greeting_timer_.cancel();
    }
    if (client_auth_ok_) return;  // a late auth: checked, and never forwarded
    if (!upstream_ && try_relieved_login()) return;
    if (!upstream_) {
      connect_upstream();
      return;
    }
    try_upstream_auth();
  }

  // ---------------------------------------------------------------- relief

  // The client's auth_ok from memory (AuthOkCache), with no upstream connection; false when the
  // relief is off or no auth_ok is known under the event stream now up.
  bool try_relieved_login() {
    if (!ctx_->relief || !auth_required_forwarded_ || ending_) return false;
    std::string auth_ok = ctx_->ws_auth_ok.get(ctx_->relief_signals.now().stream);
    if (auth_ok.empty()) return false;
    relieved_login_ = true;
    auth_timer_.cancel();
    give_client_auth_ok(std::move(auth_ok));
    // What the client sent before its auth_ok is taken as if sent after it, in order.
    drain_pending([this](std::string data, bool binary, ClientFrameVerdict verdict) {
      on_logged_in_client_frame(std::move(data), binary, std::move(verdict));
    });
    return true;
  }

  // The session logged in from memory needs Home Assistant after all: it connects and logs in
  // now, within the same time as a client's login.
  void connect_upstream_after_relieved_login() {
    connect_upstream();
    auth_timer_.expires_after(ctx_->config.ws_auth_timeout);
    auth_timer_.async_wait([weak = weak_from_this()](beast::error_code timer_ec) {
      auto self = weak.lock();
      if (timer_ec || !self) return;
      self->on_auth_timeout();
    });
  }

  // A registry list on a session with no upstream connection: from memory, joined to the same
  // list on its way for another session, or asked by this session, whose answer the others
  // then share.
  void relieve(const WsReliefCommand& command, std::string frame) {
    auto& table = *ctx_->relief;
    auto found = table.find(command.key, kOnRegistry, ReliefTable::Clock::now(), loop_);
    auto& stats = ctx_->stats;
    switch (found.kind) {
      case ReliefTable::Found::Kind::held:
        stats.relief_served_held.fetch_add(1, std::memory_order_relaxed);
        send_to_client(ws_result_with_id(command.id, found.answer->body), false);
        return;
      case ReliefTable::Found::Kind::joined:
        table.wait_then(
            std::move(found.waiter), ctx_->config.upstream_timeout,
            [weak = weak_from_this(), id = command.id, frame = std::move(frame)](
                ReliefOutcome outcome, const std::shared_ptr<const HeldAnswer>& answer) mutable {
              if (auto self = weak.lock()) {
                self->on_joined(id, std::move(frame), outcome, answer);
              }
            });
        return;
      case ReliefTable::Found::Kind::lead:
        stats.relief_upstream.fetch_add(1, std::memory_order_relaxed);
        ask_on_relief_upstream(command, std::move(frame), std::move(found.entry));
        return;
      case ReliefTable::Found::Kind::none:
        break;
    }
    stats.relief_upstream.fetch_add(1, std::memory_order_relaxed);
    to_upstream(std::move(frame), false, {});
  }

  // A list this session leads for the others: asked on the relief's own logged-in connection
  // (relief_upstream.hpp), so that this session still needs no login. The answer is shared
  // where it comes, whatever became of this session; without one, this session asks Home
  // Assistant itself, and the others are told to.
  void ask_on_relief_upstream(const WsReliefCommand& command, std::string frame,
                              std::shared_ptr<ReliefEntry> entry) {
    ctx_->relief_upstream(loop_).ask(
        command.type, [ctx = std::weak_ptr<BridgeContext>(ctx_), entry = std::move(entry),
                       weak = weak_from_this(), loop = loop_, id = command.id,
                       frame = std::move(frame)](std::optional<std::string> after_id) mutable {
          if (auto context = ctx.lock(); context && context->relief) {
            auto& table = *context->relief;
            if (!after_id) {
              table.release(entry, ReliefOutcome::relay_yourself);  // an error is not shared
            } else if (table.admit(entry, after_id->size())) {
              auto held = std::make_shared<HeldAnswer>();
              held->status = 200;
              held->body = *after_id;
              table.share(entry, std::move(held));
            }
          }
          asio::post(
              loop, [weak, id, frame = std::move(frame), after_id = std::move(after_id)]() mutable {
                if (auto self = weak.lock()) {
                  self->on_relief_upstream(id, std::move(frame), after_id);
                }
              });
        });
  }

  void on_relief_upstream(std::uint64_t id, std::string frame,
                          const std::optional<std::string>& after_id) {
    if (ending_) return;
    if (after_id) {
      send_to_client(ws_result_with_id(id, *after_id), false);
      return;
    }
    to_upstream(std::move(frame), false, {});
  }

  void on_joined(std::uint64_t id, std::string frame, ReliefOutcome outcome,
                 const std::shared_ptr<const HeldAnswer>& answer) {
    if (ending_) return;
    if (outcome == ReliefOutcome::answered && answer) {
      ctx_->stats.relief_joined.fetch_add(1, std::memory_order_relaxed);
      send_to_client(ws_result_with_id(id, answer->body), false);
      return;
    }
    // The session that asked had no answer to share: this one asks Home Assistant itself.
    ctx_->stats.relief_upstream.fetch_add(1, std::memory_order_relaxed);
    to_upstream(std::move(frame), false, {});
  }

  // Writes drop what the relief holds (WsWriteTracker says when).
  void track_write(std::string_view frame) {
    if (ctx_->relief && writes_.client_frame(frame)) ctx_->relief_signals.write_seen();
  }

  void refuse_client_auth() {
    if (ending_) return;
    send_to_client(kInvalidHubToken, false);
    end_session({websocket::close_code::normal, ""}, {websocket::close_code::normal, ""});
  }

  // ---------------------------------------------------------------- upstream side

  void connect_upstream() {
    upstream_ = std::make_shared<WsUpstream>(loop_);
    open_ws_upstream(
        upstream_, *ctx_, resolver_,
        [self = shared_from_this(), up = upstream_] {
          return up == self->upstream_ && !self->ending_;
        },
        [self = shared_from_this(), up = upstream_](beast::error_code ec, const char* stage) {
          self->on_upstream_open(up, ec, stage);
        });
  }

  void on_upstream_open(const std::shared_ptr<WsUpstream>& up, beast::error_code ec,
                        const char* stage) {
    if (ec) {
      on_upstream_failed(up, ec, stage);
      return;
    }
    if (up != upstream_ || ending_) {
      beast::get_lowest_layer(up->ws).close();
      return;
    }
    up->open = true;
    arm_keep_alive(up, Clock::now() + ctx_->config.ws_ping_interval);
    read_upstream(up);
    // A client already greeted and authenticated: log in at once instead of a round trip later
    // (Core reads the auth message after sending auth_required, so it may arrive first).
    if (auth_required_forwarded_ && hub_token_ok_) up->needs_auth = true;
    try_upstream_auth();
    pump(up);
  }

  void on_upstream_failed(const std::shared_ptr<WsUpstream>& up, beast::error_code ec,
                          const char* stage) {
    if (up != upstream_ || ending_) return;
    stop_learning();
    log::warn("WS upstream connection failed",
              fields().add("stage", stage).add("error", ec.message()));
    end_session({websocket::close_code::internal_error, "Upstream unavailable"}, {});
  }

  void read_upstream(const std::shared_ptr<WsUpstream>& up) {
    up->reading = true;
    up->ws.async_read(up->buffer,
                      [self = shared_from_this(), up](beast::error_code ec, std::size_t) {
                        self->on_upstream_read(up, ec);
                      });
  }

  void on_upstream_read(const std::shared_ptr<WsUpstream>& up, beast::error_code ec) {
    up->reading = false;
    if (up != upstream_) return;  // a connection we already replaced
    if (ec) {
      if (up->timed_out) ec = beast::error::timeout;
      up->open = false;
      if (ec == websocket::error::closed) {
        // Core (or the Supervisor) closed: the client gets the same code and reason.
        end_session(up->ws.reason(), {});
      } else {
        if (ec != asio::error::operation_aborted) {
          log::warn("WS upstream connection lost", fields().add("error", ec.message()));
        }
        up->close_socket();
        end_session({websocket::close_code::internal_error, "Upstream error"}, {});
      }
      return;
    }
    const bool binary = up->ws.got_binary();
    std::string data = up->take_message();

    if (authed_) {
      if (ctx_->relief && !binary) {
        if (writes_.upstream_frame(data)) ctx_->relief_signals.write_seen();
      }
      send_to_client(std::move(data), binary);
    } else {
      on_upstream_preauth_message(up, std::move(data), binary);
    }
    if (up == upstream_ && !up->close_started && up->open) read_upstream(up);
  }

  void on_upstream_preauth_message(const std::shared_ptr<WsUpstream>& up, std::string data,
                                   bool binary) {
    const std::string type = binary ? std::string() : core_message_type(data);
    if (type == "auth_required") {
      up->needs_auth = true;
      ctx_->ws_auth_required.remember(data);
      stop_learning();
      // On a retry with the next credential the client has seen auth_required already.
      if (!auth_required_forwarded_) {
        auth_required_forwarded_ = true;
        send_to_client(std::move(data), false);
      }
      try_upstream_auth();
    } else if (type == "auth_ok") {
      authed_ = true;
      auth_timer_.cancel();
      if (ctx_->relief) ctx_->ws_auth_ok.remember(data, ctx_->relief_signals.now().stream);
      if (!client_auth_ok_) give_client_auth_ok(std::move(data));
      drain_pending([this](std::string frame, bool is_binary, ClientFrameVerdict verdict) {
        forward_client_frame(std::move(frame), is_binary, std::move(verdict));
      });
    } else if (type == "auth_invalid") {
      if (const auto next = untried_credential_after_rejection(
              token_index_, ctx_->config.upstream_ws_tokens.size())) {
        // Legacy forwards this intermediate auth_invalid and retries on the same socket, which
        // Core has already closed; clients (the kiosk, HA's own JS client) give up on any
        // auth_invalid. So: keep it from the client and retry on a fresh connection.
        token_index_ = *next;
        log::warn("Home Assistant rejected a WebSocket credential; trying the next one",
                  fields().add("attempt", static_cast<std::int64_t>(token_index_ + 1)));
        up->close_started = true;
        up->close_socket();
        connect_upstream();
      } else if (client_auth_ok_) {
        // The client was logged in from memory: it cannot be told auth_invalid any more.
        log::warn("Home Assistant rejected the WebSocket credentials", fields());
        end_session({websocket::close_code::internal_error, "Upstream unavailable"},
                    {websocket::close_code::normal, ""});
      } else {
        log::warn("Home Assistant rejected the WebSocket credentials", fields());
        send_to_client(std::move(data), false);
        end_session({websocket::close_code::normal, ""}, {websocket::close_code::normal, ""});
      }
    } else {
      send_to_client(std::move(data), binary);
    }
  }

  void try_upstream_auth() {
    auto& up = upstream_;
    if (!up || !up->needs_auth || !hub_token_ok_ || authed_ || up->auth_sent || ending_) return;
    const auto& tokens = ctx_->config.upstream_ws_tokens;
    const auto index = credential_for_auth(token_index_, tokens.size());
    if (!index || tokens[*index].empty()) {
      log::warn("Hub agent is missing HA auth token for the WebSocket bridge", fields());
      send_to_client(kMissingHaToken, false);
      end_session({websocket::close_code::normal, ""}, {websocket::close_code::normal, ""});
      return;
    }
    up->auth_sent = true;
    send_upstream(ws_auth_message(tokens[*index]), false);
  }

  // The client's auth_ok (Home Assistant's, or from memory): from now on it may send commands.
  void give_client_auth_ok(std::string auth_ok) {
    client_auth_ok_ = true;
    client_.ws.read_message_max(ctx_->config.ws_max_message_from_client);
    send_to_client(std::move(auth_ok), false);
  }

  // Hands each message held until the login to `take`, in order, inspected as any client frame.
  template <typename Take>
  void drain_pending(Take take) {
    auto buffered = std::move(preauth_);
    preauth_.clear();
    preauth_bytes_ = 0;
    for (auto& message : buffered) {
      if (ending_) return;
      ClientFrameVerdict verdict;
      if (!message.binary) {
        verdict = inspect_client_text(message.data, ctx_->config.allow_hassio_domain);
      }
      take(std::move(message.data), message.binary, std::move(verdict));
    }
  }

  // ---------------------------------------------------------------- sending

  void send_to_client(std::string data, bool binary) {
    if (client_.close_started || !client_.open) return;
    const std::size_t limit = ctx_->config.ws_client_send_queue_bytes;
    // One message may always be in flight whatever its size; beyond that the queue is bounded.
    if (!client_.queue.empty() && client_.queued_bytes + data.size() > limit) {
      abort_slow_client();
      return;
    }
    client_.queue_message(std::move(data), binary);
    pump(client_side());
  }

  void abort_slow_client() {
    log::warn("WS client too slow; closing", fields().add("queued_bytes", client_.queued_bytes));
    // Drop everything not yet handed to Beast; the message in flight must stay alive.
    client_.drop_queue(/*keep_front=*/client_.writing);
    client_.close_started = true;
    client_.aborted = true;
    // A close may run next to a pending write; if the client never reads, the linger timer
    // closes the socket.
    client_.ws.async_close({websocket::close_code::policy_error, "Client too slow"},
                           [self = shared_from_this()](beast::error_code) {});
    end_session({}, {websocket::close_code::going_away, ""});
  }

  void send_upstream(std::string data, bool binary) {
    auto& up = upstream_;
    if (!up || up->close_started) return;
    up->queue_message(std::move(data), binary);
    pump(up);
  }

  // The client's side as the shared_ptr pump() takes; it shares the relay's ownership.
  std::shared_ptr<WsPeer> client_side() { return {shared_from_this(), &client_}; }

  // Writes `side`'s queue, either direction, in order: messages, or the close frame after which
  // nothing more goes out. A message under CoalescingStream::kDirectBytes is framed by the socket
  // layer itself and costs no asynchronous operation, so every message waiting goes out in this
  // one call (and in one send when the socket takes them all: docs/lan-bridge.md#throughput).
  // A larger one, and the close, go through Beast, one at a time; on_written goes on.
  void pump(const std::shared_ptr<WsPeer>& side) {
    auto& layer = side->ws.next_layer();
    const bool to_upstream = side.get() != &client_;
    // Beast's is_open turns false once a close frame came (it answers it itself): nothing after.
    while (side->open && side->ws.is_open() && !side->writing && !side->queue.empty()) {
      Outgoing& next = side->queue.front();
      if (next.is_close) {
        side->writing = true;
        side->ws.async_close(next.reason, [self = shared_from_this(), side](beast::error_code ec) {
          side->writing = false;
          side->drop_queue();
          if (ec) side->close_socket();
        });
        return;
      }
      if (next.data.size() >= CoalescingStream::kDirectBytes) {
        side->writing = true;
        side->ws.text(!next.binary);
        side->ws.async_write(asio::buffer(next.data),
                             [self = shared_from_this(), side](beast::error_code ec, std::size_t) {
                               self->on_written(side, ec, true);
                             });
        return;
      }
      if (!layer.has_room()) {
        // The peer reads slower than messages come: wait until the layer has sent its backlog.
        side->writing = true;
        layer.async_wait_room([self = shared_from_this(), side](beast::error_code ec) {
          self->on_written(side, ec, false);
        });
        return;
      }
      // Client to Home Assistant frames are masked (the relay is Core's client), as Beast's.
      layer.write_message(next.binary, next.data, to_upstream);
      side->pop_sent();
    }
    // Back-pressure: the client is read again once Home Assistant has taken half its backlog.
    if (to_upstream && client_read_paused_ &&
        side->queued_bytes <= ctx_->config.ws_client_send_queue_bytes / 2) {
      client_read_paused_ = false;
      if (!ending_) read_client();
    }
  }

  // A write through Beast ended (`sent_front`), or the wait for room in the socket layer did.
  void on_written(const std::shared_ptr<WsPeer>& side, beast::error_code ec, bool sent_front) {
    const bool to_client = side.get() == &client_;
    side->writing = false;
    if (sent_front) side->pop_sent();
    if (ec) {
      side->drop_queue();
      side->close_socket();
      // A failed write to Home Assistant is reported by the pending read, which ends the
      // session; the client's ends it here.
      if (to_client) {
        log::debug("WS write to client failed", fields().add("error", ec.message()));
        client_.open = false;
        end_session({}, {websocket::close_code::going_away, ""});
      }
      return;
    }
    if (side->aborted) {
      // abort_slow_client already sent the close; nothing else goes out.
      side->drop_queue();
      return;
    }
    pump(side);
  }

  // ---------------------------------------------------------------- keep-alive

  // Each side's pings and idle timeout (WsPeer::check_idle). The timer is re-armed once per
  // interval at most, where Beast's own re-armed on every message read (docs/lan-bridge.md,
  // "Throughput"). A client gets a ping once it has been silent for ws_ping_interval and is
  // dropped when still silent an interval after it (bridge_behaviour_test).
  void arm_keep_alive(const std::shared_ptr<WsPeer>& side, Clock::time_point at) {
    side->keep_alive_timer.expires_at(at);
    side->keep_alive_timer.async_wait(
        [weak = weak_from_this(), weak_side = std::weak_ptr<WsPeer>(side)](beast::error_code ec) {
          auto self = weak.lock();
          auto peer = weak_side.lock();
          if (ec || !self || !peer) return;
          self->on_keep_alive(peer);
        });
  }

  void on_keep_alive(const std::shared_ptr<WsPeer>& side) {
    if (!side->open || side->close_started || ending_) return;
    Clock::time_point next;
    switch (side->check_idle(Clock::now(), ctx_->config.ws_ping_interval, next)) {
      case WsPeer::Idle::wait:
        break;
      case WsPeer::Idle::ping:
        side->ws.async_ping({}, [](beast::error_code) {});
        break;
      case WsPeer::Idle::timed_out:
        // The pending read ends with the timeout, as with Beast's idle timer.
        side->timed_out = true;
        side->close_socket();
        return;
    }
    arm_keep_alive(side, next);
  }

  // ---------------------------------------------------------------- ending

  // Closes both sides: `to_client` / `to_upstream` are the close frames to send after what is
  // already queued. A side that is already closed or closing is left alone.
  void end_session(websocket::close_reason to_client, websocket::close_reason to_upstream) {
    if (!ending_) {
      stop_timers();
      preauth_.clear();
      preauth_bytes_ = 0;
      release_preauth_budget();
      linger_timer_.expires_after(kCloseLinger);
      linger_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
        auto self = weak.lock();
        if (ec || !self) return;
        self->hard_close_all();
      });
    }
    if (!client_.close_started && client_.open) {
      client_.close_started = true;
      client_.queue_close(std::move(to_client));
      pump(client_side());
    }
    if (upstream_ && !upstream_->close_started) {
      upstream_->close_started = true;
      if (upstream_->open) {
        upstream_->queue_close(std::move(to_upstream));
        pump(upstream_);
      } else {
        // Still connecting: cancel rather than leave Core waiting for an auth message.
        resolver_.cancel();
        upstream_->close_socket();
      }
    }
  }

  void shutdown_for_stop() {
    end_session({websocket::close_code::going_away, "Hub agent shutting down"},
                {websocket::close_code::going_away, ""});
  }

  // The session is ending: nothing waits for a timer any more (the linger timer is end_session's).
  void stop_timers() {
    ending_ = true;
    auth_timer_.cancel();
    client_.keep_alive_timer.cancel();
    if (upstream_) upstream_->keep_alive_timer.cancel();
    greeting_timer_.cancel();
    stop_learning();
  }

  void hard_close_all() {
    stop_timers();
    resolver_.cancel();
    client_.close_socket();
    if (upstream_) upstream_->close_socket();
  }

  log::Fields fields() const {
    return log::Fields().add("session", static_cast<std::int64_t>(id_));
  }

  asio::ip::address peer_;
  Loop loop_;
  std::shared_ptr<BridgeContext> ctx_;
  WsPeer client_;
  tcp::resolver resolver_;
  asio::steady_timer auth_timer_;
  asio::steady_timer linger_timer_;
  asio::steady_timer greeting_timer_;
  std::uint64_t id_;
  std::uint64_t tracker_id_ = 0;

  std::shared_ptr<WsUpstream> upstream_;
  std::size_t token_index_ = 0;

  bool client_read_done_ = false;
  bool client_read_paused_ = false;

  std::deque<Outgoing> preauth_;
  std::size_t preauth_bytes_ = 0;
  std::size_t preauth_budget_held_ = 0;  // of ctx_->ws_preauth_budget, until the hub token
  bool learning_ = false;  // the one relay connected upstream unauthenticated (cold start)

  bool hub_token_ok_ = false;
  bool refusing_ = false;  // a wrong hub token's auth_invalid is on its way
  bool auth_required_forwarded_ = false;
  bool authed_ = false;          // Core accepted this session's login
  bool client_auth_ok_ = false;  // the client has its auth_ok (Core's, or from memory)
  bool relieved_login_ = false;  // ... from memory: Core is reached only when needed
  bool ending_ = false;

  // Relief: this session's writes.
  WsWriteTracker writes_;
};

}  // namespace

void start_ws_relay(beast::tcp_stream client, const asio::ip::address& peer,
                    http::request<http::empty_body> upgrade, std::shared_ptr<BridgeContext> ctx) {
  // The socket stays on the event loop of the worker that accepted it. That loop runs on one
  // thread, so Beast's websocket stream and our state are only ever touched from it. No
  // explicit strand: each would take one of the loop's 193 strand mutexes, which Asio makes as
  // they are first needed and keeps, and made during a burst they held its pages resident
  // after it (docs/hostile-clients.md#memory-after-a-burst).
  Loop loop = client.get_executor();
  auto relay = std::make_shared<Relay>(client.release_socket(), peer, loop, std::move(ctx));
  asio::post(loop, [relay, upgrade = std::move(upgrade)] { relay->start(upgrade); });
}

}  // namespace dinodia::ha_bridge::detail
