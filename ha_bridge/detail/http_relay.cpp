// The HTTP relay (the legacy agent's, with the deliberate differences docs/compatibility.md
// lists): auth first, then the allow-list, then one streamed exchange with the Supervisor's
// Core proxy. One Exchange per relayed request; the connection's storage outlives it.
//
// The hot path is a kiosk's once-a-second poll: a small request without a body and a small
// answer. It costs one read from the client, one write to Home Assistant, one read of the answer
// and one write to the client, with no allocation once the connection's storage has grown:
// the heads are parsed into views (http_head), written with plain appends into a reused string,
// and sent together with the body in one gathered write.
#include "ha_bridge/detail/http_relay.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>

#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_bridge/detail/client_watch.hpp"
#include "ha_bridge/detail/gather_body.hpp"
#include "ha_bridge/detail/names_hassio_action.hpp"
#include "ha_bridge/detail/refuse_access.hpp"
#include "ha_bridge/detail/relay_access.hpp"
#include "ha_bridge/detail/relief_request.hpp"
#include "ha_bridge/detail/reply.hpp"
#include "ha_bridge/detail/splice_relay.hpp"
#include "ha_bridge/detail/upstream_status_log.hpp"
#include "ha_bridge/detail/whole_head.hpp"
#include "ha_bridge/detail/write_gathered.hpp"
#include "ha_bridge/detail/write_held_answer.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

constexpr std::uint32_t kResponseHeaderLimit = 64 * 1024;
// Bodies with at least this much left to read after the header are spliced (see splice_relay).
constexpr std::uint64_t kSpliceThreshold = std::uint64_t{64} * 1024;
// Room asked for when more of an answer must be read into a buffer that already has a block.
constexpr std::size_t kReadRoom = 4096;
// The largest script or automation config the relay reads to check (check_action_config): a
// config Home Assistant's editor saves is a few KiB.
constexpr std::uint64_t kMaxActionConfigBody = std::uint64_t{256} * 1024;

// A request that may save a script or automation config (Core's config views take POST; PUT
// and PATCH are checked as well, should a later Core take them).
bool saves_action_config(http::verb method, std::string_view client_path) {
  return (method == http::verb::post || method == http::verb::put || method == http::verb::patch) &&
         names_action_config(client_path);
}

using WriteResult = std::tuple<beast::error_code, std::size_t>;

class Exchange {
 public:
  Exchange(ClientConnection& client, BridgeContext& ctx, RequestHead& head,
           const NormalisedTarget& target)
      : client_(client),
        ctx_(ctx),
        head_(head),
        target_(target),
        method_(head.method_string),
        is_head_method_(head.method == http::verb::head),
        client_keep_alive_(head.keep_alive()),
        client_version_(head.version) {}

  // An exchange that ends while it leads a relieved request (its client left, Home Assistant's
  // answer broke off, the loop is destroyed) sends the requests that joined it upstream
  // themselves.
  ~Exchange() {
    if (leader_) ctx_.relief->release(leader_, ReliefOutcome::relay_yourself);
  }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  asio::awaitable<ExchangeEnd> run() {
    // Hub token, then the allow-list (relay_access.hpp). A connection that never proved a token
    // ends with its 401: a client without one cannot keep it open by asking again before each
    // idle timeout (docs/http-input.md).
    if (const RelayAccess access = relay_access(client_, ctx_, head_, target_);
        access != RelayAccess::granted) {
      co_return co_await refuse_access(client_, ctx_, head_, target_, access);
    }
    // A client waiting for "100 Continue" gets it from us once the request is accepted; the
    // Expect header is not forwarded.
    bool expects_continue =
        text::iequals(head_.get(http::field::expect), "100-continue") && !head_.is_done();
    // A script or automation saved through /api/config is read whole and checked for a hassio
    // action before anything goes upstream, unless the hassio domain is allowed.
    const bool check_actions =
        !ctx_.config.allow_hassio_domain && saves_action_config(head_.method, target_.client_path);
    if (check_actions) {
      build_upstream_request(/*read_whole=*/true);  // the last use of the head's fields
      if (const auto ended = co_await check_action_config(expects_continue)) co_return *ended;
      expects_continue = false;  // sent before the body was read
    }
    // Kiosk-load relief (docs/lan-bridge.md#kiosk-relief), only after auth and the allow-list: a
    // write drops what is held, when it starts and again when its answer came; a relievable read
    // may be answered without asking Home Assistant.
    const WriteNotice write_notice(ctx_.relief && is_relief_write(head_.method, target_.client_path)
                                       ? &ctx_.relief_signals
                                       : nullptr);
    std::optional<ReliefRequest> relief;
    if (ctx_.relief && !write_notice.signals && !check_actions) {
      relief = relief_request(head_, target_);
    }
    if (!check_actions) build_upstream_request(/*read_whole=*/false);  // as above
    if (relief) {
      if (const auto ended = co_await relieve(*relief)) co_return *ended;
    }

    if (expects_continue && !co_await send_continue()) co_return ExchangeEnd::close;

    const bool retryable = !has_body_;
    for (int attempt = 0; attempt < 2; ++attempt) {
      error_ = {};
      client_.upstream = nullptr;
      upstream_.reset();
      upstream_buffer_.consume(upstream_buffer_.size());
      // The retry always takes a fresh connection: when one pooled connection was dead (Home
      // Assistant restarted), the others usually are too.
      std::optional<tcp::socket> idle;
      if (attempt == 0) idle = client_.upstream_pool.take(retryable);
      const bool reused = idle.has_value();
      if (reused) {
        upstream_.emplace(std::move(*idle));
        client_.upstream = &*upstream_;
      } else if (!co_await connect_fresh()) {
        co_return co_await upstream_failed(false);
      }
      if (!co_await send_request()) {
        if (client_failed_) co_return co_await client_body_failed();
        // A pooled connection the server closed meanwhile: retry once on a fresh one, as
        // long as no body byte has been consumed from the client.
        if (reused && !body_started_ && !body_consumed_) continue;
        co_return co_await upstream_failed(false);
      }
      if (!co_await read_response_head()) {
        if (client_gone_) co_return ExchangeEnd::close;
        if (reused && retryable && upstream_buffer_.empty() &&
            (error_ == asio::error::eof || error_ == asio::error::connection_reset)) {
          continue;
        }
        co_return co_await upstream_failed(false);
      }
      co_return co_await relay_response();
    }
    co_return co_await upstream_failed(false);
  }

 private:
  struct WriteNotice {
    explicit WriteNotice(ReliefSignals* s) : signals(s) {
      if (signals) signals->write_seen();
    }
    ~WriteNotice() {
      if (signals) signals->write_seen();
    }
    WriteNotice(const WriteNotice&) = delete;
    WriteNotice& operator=(const WriteNotice&) = delete;
    ReliefSignals* signals;
  };

  // The relief's part of a relievable request: an answer from memory, or the one of an
  // identical request in flight, ends the exchange here; otherwise this request goes upstream,
  // leading an entry whose answer it shares (leader_) unless the table is full.
  asio::awaitable<std::optional<ExchangeEnd>> relieve(ReliefRequest& request) {
    if (request.body_length > 0) {
      // The template body is part of the key: read it whole now (at most 64 KiB).
      while (client_.buffer.size() < request.body_length) {
        if (!co_await read_client_body()) co_return co_await client_body_failed();
      }
      body_buffered_ = true;
      request.key.append(client_.buffer.readable().substr(0, buffered_body_length()));
    }
    auto& table = *ctx_.relief;
    auto& stats = ctx_.stats;
    auto found = table.find(request.key, request.depends, ReliefTable::Clock::now(),
                            client_.socket.get_executor());
    switch (found.kind) {
      case ReliefTable::Found::Kind::held:
        stats.relief_served_held.fetch_add(1, std::memory_order_relaxed);
        co_return co_await answer_from_memory(*found.answer);
      case ReliefTable::Found::Kind::joined: {
        std::shared_ptr<const HeldAnswer> answer;
        const auto outcome =
            co_await table.wait(std::move(found.waiter), ctx_.config.upstream_timeout, answer);
        if (outcome == ReliefOutcome::answered) {
          stats.relief_joined.fetch_add(1, std::memory_order_relaxed);
          co_return co_await answer_from_memory(*answer);
        }
        if (outcome == ReliefOutcome::upstream_error) co_return co_await upstream_failed(false);
        break;  // relay_yourself
      }
      case ReliefTable::Found::Kind::lead:
        leader_ = std::move(found.entry);
        break;
      case ReliefTable::Found::Kind::none:
        break;
    }
    stats.relief_upstream.fetch_add(1, std::memory_order_relaxed);
    co_return std::nullopt;
  }

  asio::awaitable<ExchangeEnd> answer_from_memory(const HeldAnswer& answer) {
    if (body_buffered_) {
      client_.buffer.consume(buffered_body_length());  // the next request starts after it
      body_consumed_ = true;
    }
    log_upstream_status(method_, target_.client_path, answer.status, {});
    co_return co_await write_held_answer(client_, ctx_, answer, client_keep_alive_,
                                         client_version_);
  }

  // At the answer's head: whether this leader captures the answer for the requests that joined
  // it (and to hold). Only a body of known length within the relief's bounds is captured;
  // otherwise they are sent upstream themselves at once, before this body is relayed.
  std::shared_ptr<HeldAnswer> start_capture(const boost::optional<std::uint64_t>& length,
                                            bool bodiless) {
    if (!leader_) return nullptr;
    const auto& res = *response_;
    if (!length || bodiless) {
      end_leading(ReliefOutcome::relay_yourself);
      return nullptr;
    }
    const auto bytes = static_cast<std::size_t>(
        std::min<std::uint64_t>(*length, std::numeric_limits<std::size_t>::max()));
    if (!ctx_.relief->admit(leader_, bytes)) {
      leader_.reset();  // over a bound: admit released it
      return nullptr;
    }
    auto held = std::make_shared<HeldAnswer>();
    held->status = res.status;
    held->reason.assign(res.reason);
    append_response_fields(held->fields, *res.fields);
    held->body.reserve(static_cast<std::size_t>(*length));
    return held;
  }

  void end_leading(ReliefOutcome outcome) {
    if (!leader_) return;
    ctx_.relief->release(leader_, outcome);
    leader_.reset();
  }

  void share_captured(std::shared_ptr<HeldAnswer> held) {
    if (!held || !leader_) return;
    ctx_.relief->share(leader_, std::move(held));
    leader_.reset();
  }

  // `read_whole`: the body is read before it goes upstream (check_action_config), which then
  // adds its framing to the head.
  void build_upstream_request(bool read_whole) {
    has_body_ = !head_.is_done();
    Framing framing;
    if (read_whole) {
      // framed by check_action_config
    } else if (const auto length = head_.content_length()) {
      framing = {Framing::Kind::length, *length};
      request_length_ = *length;
    } else if (has_body_) {
      framing = {Framing::Kind::chunked, 0};  // chunked client bodies are re-framed
      request_chunked_ = true;
    }
    write_request_head(
        client_.head, method_,
        {ctx_.config.upstream.path_prefix, "/core", target_.client_path, target_.search},
        *head_.fields, ctx_.upstream_fields, framing);
    body_buffered_ =
        !read_whole && has_body_ && !request_chunked_ && client_.buffer.size() >= request_length_;
  }

  // "100 Continue" to a client that waits for it. False when the client went away.
  asio::awaitable<bool> send_continue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    client_.gather.assign({asio::buffer(kContinue)});
    const auto [ec, n] = co_await write_within(client_, client_.socket, ctx_.config.io_timeout);
    (void)n;
    co_return !client_.checked(ec);
  }

  // A script or automation config (saves_action_config), after build_upstream_request(true):
  // reads the body whole, at most kMaxActionConfigBody (413 above), into held_body_ and refuses
  // one that may name a hassio action (names_hassio_action.hpp; a body that is not JSON too)
  // with the allow-list's 403 (docs/http-input.md). Otherwise completes the upstream head with
  // the body's length (a chunked body goes on with a Content-Length) and returns nothing.
  asio::awaitable<std::optional<ExchangeEnd>> check_action_config(bool expects_continue) {
    if (const auto declared = head_.content_length();
        declared && *declared > kMaxActionConfigBody) {
      co_return co_await reply_json(client_, ctx_, 413, kBodyTooLargeBody, false, client_version_);
    }
    if (expects_continue && !co_await send_continue()) co_return ExchangeEnd::close;
    held_body_.emplace();
    head_.body_limit(std::min<std::uint64_t>(ctx_.config.max_body_bytes, kMaxActionConfigBody));
    head_.eager(true);
    beast::error_code ec;
    while (!head_.is_done()) {
      if (client_.buffer.empty() && !co_await read_client_body()) {
        co_return co_await client_body_failed();
      }
      head_.body->clear();
      const std::size_t used = head_.put(asio::buffer(client_.buffer.readable()), ec);
      if (ec && ec != http::error::need_more) {
        client_failed_ = true;
        error_ = ec;
        co_return co_await client_body_failed();
      }
      for (auto piece : *head_.body) held_body_->append(piece);
      client_.buffer.consume(used);
      if (!head_.is_done() && used == 0 && !co_await read_client_body()) {
        co_return co_await client_body_failed();
      }
    }
    body_started_ = body_consumed_ = true;
    if (text_may_name_hassio_action(*held_body_)) {
      ctx_.stats.http_rejected_forbidden.fetch_add(1, std::memory_order_relaxed);
      co_return co_await refuse_access(client_, ctx_, head_, target_,
                                       RelayAccess::path_not_allowed);
    }
    client_.head.resize(client_.head.size() - 2);  // before the head's final CRLF
    append_framing(client_.head, {Framing::Kind::length, held_body_->size()});
    client_.head.append("\r\n");
    co_return std::nullopt;
  }

  // The length of a body that came whole with the head (body_buffered_): no more than the read
  // buffer holds, so it fits a size_t also where that is 32 bits (armv7).
  std::size_t buffered_body_length() const { return static_cast<std::size_t>(request_length_); }

  asio::awaitable<bool> connect_fresh() {
    const auto executor = client_.socket.get_executor();
    upstream_.emplace(executor);
    client_.upstream = &*upstream_;
    client_.deadline.expires_after(ctx_.config.upstream_connect_timeout);
    beast::error_code ec;
    if (auto endpoint = client_.upstream_pool.cached_endpoint()) {
      std::tie(ec) = co_await upstream_->async_connect(*endpoint, kAwaitTuple);
    } else {
      tcp::resolver resolver(executor);
      auto [rec, results] = co_await resolver.async_resolve(
          ctx_.config.upstream.host, std::to_string(ctx_.config.upstream.port), kAwaitTuple);
      ec = rec;
      if (!ec && !client_.deadline.expired()) {
        tcp::endpoint connected;
        std::tie(ec, connected) = co_await asio::async_connect(*upstream_, results, kAwaitTuple);
        if (!ec) client_.upstream_pool.set_cached_endpoint(connected);
      }
    }
    if (client_.deadline.expired()) ec = beast::error::timeout;
    client_.deadline.expires_never();
    if (ec) {
      client_.upstream_pool.set_cached_endpoint(std::nullopt);
      error_ = ec;
      co_return false;
    }
    upstream_->set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  // Writes client_.gather to Home Assistant, under the io deadline.
  auto write_upstream() { return write_within(client_, *upstream_, ctx_.config.io_timeout); }
  // After write_upstream: false (and `error_` set) when it failed.
  bool upstream_written(const WriteResult& result) {
    client_.deadline.expires_never();
    error_ = client_.checked(std::get<0>(result));
    return !error_;
  }

  // Sends the request head, then the client's body (if any). False on failure;
  // `client_failed_` tells whose side failed.
  asio::awaitable<bool> send_request() {
    if (held_body_) {
      client_.gather.assign({asio::buffer(client_.head), asio::buffer(*held_body_)});
    } else if (body_buffered_) {
      // The whole body came with the head (a template render, a service call): one write.
      const auto body = client_.buffer.readable().substr(0, buffered_body_length());
      client_.gather.assign({asio::buffer(client_.head), asio::buffer(body)});
    } else {
      client_.gather.assign({asio::buffer(client_.head)});
    }
    if (!upstream_written(co_await write_upstream())) co_return false;
    if (body_buffered_) {
      client_.buffer.consume(buffered_body_length());
      body_consumed_ = true;
    }
    if (!has_body_ || body_consumed_) co_return true;

    // Streamed: the body as it arrives.
    head_.eager(true);
    beast::error_code ec;
    while (!head_.is_done()) {
      if (client_.buffer.empty() && !co_await read_client_body()) co_return false;
      head_.body->clear();
      const std::size_t used = head_.put(asio::buffer(client_.buffer.readable()), ec);
      if (ec && ec != http::error::need_more) {
        client_failed_ = true;
        error_ = ec;
        co_return false;
      }
      if (used > 0) body_started_ = true;
      if (!head_.body->empty() || head_.is_done()) {
        gather_body(client_, {}, *head_.body, request_chunked_, head_.is_done());
        if (!client_.gather.empty() && !upstream_written(co_await write_upstream())) {
          co_return false;
        }
      }
      client_.buffer.consume(used);
      if (!head_.is_done() && used == 0 && !co_await read_client_body()) co_return false;
    }
    body_consumed_ = true;
    co_return true;
  }

  asio::awaitable<bool> read_client_body() {
    client_.deadline.expires_after(ctx_.config.io_timeout);
    auto [rec, n] = co_await read_from_client(client_, kReadRoom);
    const auto ec = client_.read_done(rec, n);
    client_.deadline.expires_never();
    if (!ec) co_return true;
    client_failed_ = true;
    error_ = ec == asio::error::eof ? beast::error_code(http::error::end_of_stream) : ec;
    co_return false;
  }

  // More of Home Assistant's answer into `upstream_buffer_` (a whole block at first).
  auto read_upstream() {
    const std::size_t room = upstream_buffer_.capacity() == 0 ? ReadBuffer::kLargeBlock : kReadRoom;
    return upstream_->async_read_some(upstream_buffer_.prepare(room), kAwaitTuple);
  }
  beast::error_code upstream_read_done(beast::error_code ec, std::size_t n) {
    ec = client_.checked(ec);
    if (!ec) upstream_buffer_.commit(n);
    return ec;
  }

  asio::awaitable<bool> read_response_head() {
    // While we wait, a client that goes away is noticed (once the wait has lasted a tick).
    client_.watch = ClientConnection::Watch{};
    client_.watch.max_buffered = ctx_.config.max_header_bytes;
    client_.waiting.add(client_);
    struct NoLongerWaiting {
      ClientConnection& client;
      ~NoLongerWaiting() { client.waiting.remove(client); }
    } no_longer_waiting{client_};

    bool ok = true;
    client_.deadline.expires_after(ctx_.config.upstream_timeout);
    // 1xx interim answers are consumed here; the client got its own 100 Continue from us.
    for (int interim = 0; interim < 8 && ok; ++interim) {
      response_.emplace(client_.response_fields, client_.response_body);
      response_->header_limit(kResponseHeaderLimit);
      response_->body_limit(boost::none);
      if (is_head_method_) response_->skip(true);
      WholeHead whole(kResponseHeaderLimit);
      beast::error_code ec;
      while (!whole.parse(*response_, upstream_buffer_.readable(), ec)) {
        auto [rec, n] = co_await read_upstream();
        if ((ec = upstream_read_done(rec, n))) break;
      }
      if (ec) {
        error_ = ec;
        ok = false;
      }
      if (!ok) break;
      upstream_buffer_.consume(whole.used());
      if (response_->status >= 200 || response_->status < 100) break;
    }
    client_.deadline.expires_never();
    client_.waiting.remove(client_);
    if (client_.watch.pending) co_await stop_watch(client_);
    client_gone_ = client_.watch.gone;
    co_return ok && !client_gone_;
  }

  asio::awaitable<ExchangeEnd> client_body_failed() {
    close_upstream();
    const auto ec = error_;
    if (ec == http::error::body_limit) {
      co_return co_await reply_json(client_, ctx_, 413, kBodyTooLargeBody, false, client_version_);
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      co_return ExchangeEnd::close;
    }
    co_return co_await reply_json(client_, ctx_, 400, kBadRequestBody, false, client_version_);
  }

  void close_upstream() {
    if (upstream_) {
      boost::system::error_code ignored;
      upstream_->close(ignored);
    }
  }

  asio::awaitable<ExchangeEnd> upstream_failed(bool headers_sent) {
    close_upstream();
    // Requests that joined get the same 502; after a head went out, they ask themselves.
    end_leading(headers_sent ? ReliefOutcome::relay_yourself : ReliefOutcome::upstream_error);
    ctx_.stats.http_upstream_errors.fetch_add(1, std::memory_order_relaxed);
    log::warn("Upstream HTTP error", error_ ? error_.message() : std::string("unknown error"));
    if (headers_sent) co_return ExchangeEnd::close;
    if (body_buffered_ && !body_consumed_) {
      client_.buffer.consume(buffered_body_length());  // the next request starts after this body
      body_consumed_ = true;
    }
    const bool body_done = !has_body_ || body_consumed_;
    co_return co_await reply_json(client_, ctx_, 502, kUpstreamErrorBody,
                                  client_keep_alive_ && body_done, client_version_);
  }

  // Writes client_.gather to the client, under the io deadline.
  auto write_client() { return write_within(client_, client_.socket, ctx_.config.io_timeout); }
  // After write_client: false when it failed (the client went away or stalled); the upstream
  // connection is then closed, so Home Assistant stops sending.
  bool client_written(const WriteResult& result) {
    client_.deadline.expires_never();
    if (!client_.checked(std::get<0>(result))) return true;
    close_upstream();
    return false;
  }

  asio::awaitable<ExchangeEnd> relay_response() {
    auto& res = *response_;
    const unsigned status = res.status;
    const bool bodiless = is_head_method_ || status == 204 || status == 304;
    bool keep_alive = client_keep_alive_ && !client_.stopping && !ctx_.connections.stopping();
    const auto length = res.content_length();
    Framing framing;
    if (length) {
      if (!bodiless || is_head_method_) framing = {Framing::Kind::length, *length};
    } else if (!bodiless) {
      if (client_version_ >= 11) {
        framing = {Framing::Kind::chunked, 0};  // upstream length unknown: re-chunk
      } else {
        keep_alive = false;  // HTTP/1.0 client: the end of the body is the end of the connection
      }
    }
    const bool upstream_reusable = res.keep_alive();
    write_response_head(client_.head, status, res.reason, *res.fields, framing, keep_alive,
                        client_version_);
    // The head's views are spent: the buffer may move from here on.

    const bool capture = capture_flow_body(method_, target_.client_path, status);
    std::string captured;
    // A relieved request's answer, captured for the requests that joined it (start_capture).
    auto held = start_capture(length, bodiless);
    if (bodiless || res.is_done()) {
      share_captured(std::move(held));  // an empty body
      client_.gather.assign({asio::buffer(client_.head)});
      if (!client_written(co_await write_client())) co_return ExchangeEnd::close;
    } else if (length && upstream_buffer_.size() >= *length) {
      // The hot path (small JSON answers): the whole body is already in our read buffer, so the
      // head and the body go out in one write, straight from that buffer.
      const auto body = upstream_buffer_.readable().substr(0, static_cast<std::size_t>(*length));
      if (capture) captured.assign(body.substr(0, kFlowBodyCapture));
      if (held) {
        held->body.assign(body);
        share_captured(std::move(held));  // the requests that joined need not wait for this write
      }
      client_.gather.assign({asio::buffer(client_.head), asio::buffer(body)});
      if (!client_written(co_await write_client())) co_return ExchangeEnd::close;
      upstream_buffer_.consume(body.size());
    } else if (length && !capture && !held &&
               *length - upstream_buffer_.size() >= kSpliceThreshold) {
      if (const auto ended = co_await splice_body(*length)) co_return *ended;
    } else {
      const bool chunked = framing.kind == Framing::Kind::chunked;
      if (const auto ended = co_await stream_body(chunked, capture ? &captured : nullptr, held)) {
        co_return *ended;
      }
    }
    log_upstream_status(method_, target_.client_path, status, captured);

    if (upstream_reusable && upstream_buffer_.empty() && upstream_->is_open()) {
      client_.upstream = nullptr;
      client_.upstream_pool.give_back(std::move(*upstream_));
    } else {
      close_upstream();
    }
    client_.upstream = nullptr;
    co_return keep_alive ? ExchangeEnd::keep_alive : ExchangeEnd::close;
  }

  // A large body of known length (camera images, big /api/states): the head and whatever body
  // bytes came with it go out from our buffer; the rest never enters user space. Nothing when
  // the whole body went through, otherwise how the exchange ended.
  asio::awaitable<std::optional<ExchangeEnd>> splice_body(std::uint64_t length) {
    const auto& cfg = ctx_.config;
    const std::size_t buffered = upstream_buffer_.size();
    client_.gather.assign({asio::buffer(client_.head), asio::buffer(upstream_buffer_.readable())});
    if (!client_written(co_await write_client())) co_return ExchangeEnd::close;
    upstream_buffer_.consume(buffered);
    beast::error_code move_error;
    const auto moved = co_await move_bytes(*upstream_, client_.socket, length - buffered,
                                           cfg.upstream_timeout, cfg.io_timeout, move_error);
    if (moved == MoveResult::source_failed) {
      error_ = move_error;  // Home Assistant went away mid-body: the client's connection ends
      co_return co_await upstream_failed_mid_body();
    }
    if (moved == MoveResult::sink_failed) {
      close_upstream();  // the client went away: stop reading from Home Assistant
      co_return ExchangeEnd::close;
    }
    co_return std::nullopt;
  }

  // Any other body: the head goes with whatever body is here, the rest piece by piece as it
  // arrives, so a client sees the status before the body is complete. `captured`, if given,
  // keeps the start of the body; `held`, if set, gets all of it and is shared as soon as it is
  // whole, before its last piece goes to this client (who may ask again at once). Nothing when
  // the whole body went through, otherwise how the exchange ended.
  asio::awaitable<std::optional<ExchangeEnd>> stream_body(bool chunked, std::string* captured,
                                                          std::shared_ptr<HeldAnswer>& held) {
    auto& res = *response_;
    std::string_view prefix = client_.head;
    res.eager(true);
    bool upstream_ended = false;
    for (;;) {
      beast::error_code ec;
      std::size_t used = 0;
      res.body->clear();
      if (upstream_ended) {
        res.put_eof(ec);  // a body delimited by the end of the connection
      } else if (!upstream_buffer_.empty()) {
        used = res.put(asio::buffer(upstream_buffer_.readable()), ec);
        if (ec == http::error::need_more) ec = {};
      }
      if (ec) {
        error_ = ec;  // a malformed body: the client must not take it for a whole one
        co_return co_await upstream_failed_mid_body();
      }
      for (auto piece : *res.body) {
        if (captured && captured->size() < kFlowBodyCapture) {
          captured->append(piece.substr(0, kFlowBodyCapture - captured->size()));
        }
        if (held) held->body.append(piece);
      }
      if (res.is_done()) share_captured(std::exchange(held, nullptr));
      if (!prefix.empty() || !res.body->empty() || res.is_done()) {
        gather_body(client_, prefix, *res.body, chunked, res.is_done());
        prefix = {};
        if (!client_.gather.empty() && !client_written(co_await write_client())) {
          co_return ExchangeEnd::close;
        }
      }
      upstream_buffer_.consume(used);
      if (res.is_done()) co_return std::nullopt;
      if (used > 0 && !upstream_buffer_.empty()) continue;
      client_.deadline.expires_after(ctx_.config.upstream_timeout);
      auto [rec, rn] = co_await read_upstream();
      ec = upstream_read_done(rec, rn);
      client_.deadline.expires_never();
      if (ec == asio::error::eof && res.need_eof()) {
        upstream_ended = true;
      } else if (ec) {
        // Home Assistant went away mid-body: the client must not mistake the truncated body
        // for a whole one, so its connection ends too.
        error_ = ec;
        co_return co_await upstream_failed_mid_body();
      }
    }
  }

  // Home Assistant's answer broke off after its head went to the client (`error_` says how):
  // the client's connection ends too, so that it cannot take a part for the whole.
  asio::awaitable<ExchangeEnd> upstream_failed_mid_body() {
    boost::system::error_code ignored;
    client_.socket.close(ignored);
    co_return co_await upstream_failed(true);
  }

  ClientConnection& client_;
  BridgeContext& ctx_;
  RequestHead& head_;
  const NormalisedTarget& target_;
  const std::string method_;
  const bool is_head_method_;
  const bool client_keep_alive_;
  const int client_version_;

  bool has_body_ = false;
  bool request_chunked_ = false;
  std::uint64_t request_length_ = 0;
  bool body_buffered_ = false;            // the whole Content-Length body came with the head
  bool body_started_ = false;             // some of a streamed body was taken from the client
  bool body_consumed_ = false;            // all of it was
  std::optional<std::string> held_body_;  // a body read whole to check (check_action_config)
  std::optional<tcp::socket> upstream_;
  ReadBuffer upstream_buffer_;
  std::optional<ResponseHead> response_;
  beast::error_code error_;
  bool client_failed_ = false;
  bool client_gone_ = false;
  // The relief entry this request leads: its answer goes to the requests that joined it.
  std::shared_ptr<ReliefEntry> leader_;
};

}  // namespace

asio::awaitable<ExchangeEnd> relay_http(ClientConnection& client, BridgeContext& ctx,
                                        RequestHead& head, const NormalisedTarget& target) {
  Exchange exchange(client, ctx, head, target);
  const auto end = co_await exchange.run();
  client.upstream = nullptr;
  co_return end;
}

}  // namespace dinodia::ha_bridge::detail
