// The HTTP relay (legacy-agent.md §6 with the deliberate differences issue #2 asks for): auth
// first, then the allow-list, then one streamed exchange with the Supervisor's Core proxy.
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/log.hpp"
#include "common/text.hpp"
#include "ha_bridge/detail/splice_relay.hpp"
#include "ha_bridge/http_exchange.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = std::size_t{64} * 1024;
// Beast sizes each socket read as max(512, capacity - size) of the dynamic buffer. The
// buffer_body parser copies bytes out at once, so an unreserved flat_buffer never grows and a
// 256 KiB camera image took ~500 reads of 512 bytes (each re-arming a timer). Reserving gives
// reads of up to this size.
constexpr std::size_t kUpstreamReadBuffer = std::size_t{64} * 1024;
constexpr std::size_t kClientBodyReadBuffer = std::size_t{16} * 1024;
constexpr std::size_t kFlowBodyCapture = 4096;
// Bodies with at least this much left to read after the header are spliced (see splice_relay).
constexpr std::uint64_t kSpliceThreshold = std::uint64_t{64} * 1024;

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te",         "trailers",   "transfer-encoding",  "upgrade"};
  for (auto n : kNames) {
    if (text::iequals(name, n)) return true;
  }
  return false;
}

// Legacy §6.4: a config-flow 400 is "expected" (logged at info) when its body says so.
bool is_expected_flow_error(std::string_view method, std::string_view path, unsigned status,
                            const std::string& body) {
  if (status != 400 || (method != "POST" && method != "DELETE")) return false;
  if (path.rfind("/api/config/config_entries/flow/", 0) != 0) return false;
  static constexpr std::string_view kPhrases[] = {
      "already configured",   "already been configured", "already created",      "create_entry",
      "flow aborted",         "flow not found",          "no config flow found", "not in progress",
      "unknown flow",         "invalid flow specified",  "does not exist",       "already finished",
      "no longer in progress"};
  const std::string lowered = text::lower(body);
  for (auto phrase : kPhrases) {
    if (lowered.find(phrase) != std::string::npos) return true;
  }
  return false;
}

bool capture_flow_body(std::string_view method, std::string_view path, unsigned status) {
  return status == 400 && (method == "POST" || method == "DELETE") &&
         path.rfind("/api/config/config_entries/flow/", 0) == 0;
}

// Watches the client socket while we wait for Home Assistant's answer: a client that goes away
// (EOF or reset) closes the upstream connection, which cancels the upstream request instead
// of letting it run on for up to five minutes. Bytes of a pipelined next request are kept.
// Callback based (a readiness wait plus non-blocking reads), not a coroutine: it runs for
// every relayed request, and this costs one allocation and no extra event-loop round trips.
class ClientWatch : public std::enable_shared_from_this<ClientWatch> {
 public:
  ClientWatch(ClientConnection& client, std::size_t max_buffered)
      : client_(&client), max_buffered_(max_buffered) {}

  // No read is attempted first: Asio registers a readiness wait with EPOLL_CTL_MOD, which
  // reports an EOF or bytes that arrived before the wait was armed.
  void start() { arm(); }
  // After stop() the watch never touches the connection again: a wait still queued completes
  // (cancelled) later and finds `active_` false.
  void stop() noexcept {
    if (!active_) return;
    active_ = false;
    boost::system::error_code ignored;
    client_->stream.socket().cancel(ignored);
  }
  bool client_gone() const { return client_gone_; }

 private:
  void arm() {
    client_->stream.socket().async_wait(tcp::socket::wait_read,
                                        [self = shared_from_this()](boost::system::error_code ec) {
                                          if (!self->active_) return;
                                          if (ec) {
                                            if (ec != asio::error::operation_aborted) self->gone();
                                            return;
                                          }
                                          if (self->drain()) self->arm();
                                        });
  }
  // Reads whatever the client sent, without blocking. False when watching is over.
  bool drain() {
    auto& buffer = client_->buffer;
    while (buffer.size() <= max_buffered_) {
      auto space = buffer.prepare(1024);
      const ssize_t n = ::recv(client_->stream.socket().native_handle(), space.data(), space.size(),
                               MSG_DONTWAIT);
      if (n > 0) {
        buffer.commit(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n < 0 && errno == EINTR) continue;
      gone();  // EOF, reset, or the socket was closed under us
      return false;
    }
    return false;  // a client flooding us while it waits: stop reading, answer, then close
  }
  void gone() {
    client_gone_ = true;
    if (client_->upstream) client_->upstream->close();
  }

  ClientConnection* client_;
  const std::size_t max_buffered_;
  bool active_ = true;
  bool client_gone_ = false;
};

// Body chunks are relayed through one buffer per direction and exchange; it need not be zeroed.
std::unique_ptr<char[]> chunk_buffer(std::size_t size) {
  return std::unique_ptr<char[]>(new char[size]);
}

class Exchange {
 public:
  Exchange(ClientConnection& client, BridgeContext& ctx,
           http::request_parser<http::empty_body>& header, const NormalisedTarget& target)
      : client_(client),
        ctx_(ctx),
        header_(header),
        target_(target),
        method_(header.get().method_string()),
        client_keep_alive_(header.get().keep_alive()),
        client_version_(header.get().version()) {}

  asio::awaitable<ExchangeEnd> run() {
    const auto& req = header_.get();
    // Auth first (a deliberate difference from legacy, which checked the path first).
    const std::string_view token = text::bearer_token(req[http::field::authorization]);
    if (token.empty() || !ctx_.tokens->accepts(token)) {
      ctx_.stats.http_rejected_unauthorized.fetch_add(1);
      co_return co_await reply_json(client_, ctx_, 401, std::string(kUnauthorizedBody),
                                    client_keep_alive_ && header_.is_done());
    }
    if (!ctx_.allow_list.allows(target_.client_path)) {
      ctx_.stats.http_rejected_forbidden.fetch_add(1);
      nlohmann::json body = {{"error", "Path not allowed."}, {"path", target_.client_path}};
      co_return co_await reply_json(client_, ctx_, 403, body.dump(),
                                    client_keep_alive_ && header_.is_done());
    }
    build_upstream_request();

    // A client waiting for "100 Continue" gets it from us once the request is accepted; the
    // Expect header is not forwarded.
    if (text::iequals(req[http::field::expect], "100-continue") && !header_.is_done()) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      client_.stream.expires_after(ctx_.config.io_timeout);
      auto [ec, n] = co_await http::async_write(client_.stream, cont, kTuple);
      (void)n;
      if (ec) co_return ExchangeEnd::close;
    }

    const auto end = co_await exchange();
    client_.upstream = nullptr;
    co_return end;
  }

 private:
  void build_upstream_request() {
    const auto& req = header_.get();
    upstream_req_.method_string(method_);
    upstream_req_.target(ctx_.config.upstream.core_path(target_.client_path) + target_.search);
    upstream_req_.version(11);
    for (const auto& field : req) {
      const auto name = field.name_string();
      if (is_hop_by_hop(name) || text::iequals(name, "host") ||
          text::iequals(name, "authorization") || text::iequals(name, "content-length") ||
          text::iequals(name, "expect")) {
        continue;
      }
      upstream_req_.insert(name, field.value());
    }
    upstream_req_.set(http::field::host, ctx_.config.upstream.host_header());
    upstream_req_.set(http::field::authorization, "Bearer " + ctx_.config.supervisor_token);
    has_body_ = !header_.is_done();
    if (has_body_) {
      if (auto length = header_.content_length()) {
        upstream_req_.content_length(*length);
      } else {
        upstream_req_.chunked(true);  // chunked client bodies are re-framed
      }
    }
    upstream_req_.keep_alive(true);
  }

  asio::awaitable<bool> connect_fresh() {
    const auto executor = client_.stream.get_executor();
    upstream_.emplace(executor);
    client_.upstream = &*upstream_;
    upstream_->expires_after(ctx_.config.upstream_connect_timeout);
    beast::error_code ec;
    if (auto endpoint = client_.upstream_pool.cached_endpoint()) {
      std::tie(ec) = co_await upstream_->async_connect(*endpoint, kTuple);
    } else {
      tcp::resolver resolver(executor);
      auto [rec, results] = co_await resolver.async_resolve(
          ctx_.config.upstream.host, std::to_string(ctx_.config.upstream.port), kTuple);
      ec = rec;
      if (!ec) {
        tcp::endpoint connected;
        std::tie(ec, connected) = co_await upstream_->async_connect(results, kTuple);
        if (!ec) client_.upstream_pool.set_cached_endpoint(connected);
      }
    }
    if (ec) {
      client_.upstream_pool.set_cached_endpoint(std::nullopt);
      error_ = ec;
      co_return false;
    }
    upstream_->socket().set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  // Sends the request header, then streams the client's body (if any) upstream.
  // Returns false on failure; `client_failed_` tells whose side failed.
  asio::awaitable<bool> send_request() {
    http::request_serializer<http::buffer_body> serializer{upstream_req_};
    upstream_req_.body().data = nullptr;
    upstream_req_.body().size = 0;
    upstream_req_.body().more = has_body_;
    upstream_->expires_after(ctx_.config.io_timeout);
    auto [hec, hn] = co_await http::async_write_header(*upstream_, serializer, kTuple);
    (void)hn;
    if (hec) {
      error_ = hec;
      co_return false;
    }
    if (!has_body_) co_return true;

    body_parser_.emplace(std::move(header_));
    body_parser_->body_limit(ctx_.config.max_body_bytes);
    client_.buffer.reserve(kClientBodyReadBuffer);
    const std::size_t chunk_size =
        std::min<std::uint64_t>(kChunk, body_parser_->content_length().value_or(kChunk));
    const auto chunk = chunk_buffer(chunk_size);
    while (!body_parser_->is_done()) {
      body_parser_->get().body().data = chunk.get();
      body_parser_->get().body().size = chunk_size;
      client_.stream.expires_after(ctx_.config.io_timeout);
      auto [rec, rn] =
          co_await http::async_read(client_.stream, client_.buffer, *body_parser_, kTuple);
      (void)rn;
      if (rec == http::error::need_buffer) rec = {};
      if (rec) {
        client_failed_ = true;
        error_ = rec;
        co_return false;
      }
      const std::size_t got = chunk_size - body_parser_->get().body().size;
      upstream_req_.body().data = got ? chunk.get() : nullptr;
      upstream_req_.body().size = got;
      upstream_req_.body().more = !body_parser_->is_done();
      upstream_->expires_after(ctx_.config.io_timeout);
      auto [wec, wn] = co_await http::async_write(*upstream_, serializer, kTuple);
      (void)wn;
      if (wec == http::error::need_buffer) wec = {};
      if (wec) {
        error_ = wec;
        co_return false;
      }
    }
    client_.stream.expires_never();
    co_return true;
  }

  asio::awaitable<bool> read_response_header() {
    client_.stream.expires_never();
    auto watch = std::make_shared<ClientWatch>(client_, ctx_.config.max_header_bytes);
    watch->start();
    struct StopWatch {
      ClientWatch& watch;
      ~StopWatch() { watch.stop(); }
    } stop_watch{*watch};
    bool ok = true;
    // 1xx interim answers are consumed here; the client got its own 100 Continue from us.
    for (int interim = 0; interim < 8; ++interim) {
      response_parser_.emplace();
      response_parser_->body_limit(boost::none);
      response_parser_->header_limit(64 * 1024);
      if (method_ == "HEAD") response_parser_->skip(true);
      upstream_buffer_.reserve(kUpstreamReadBuffer);
      upstream_->expires_after(ctx_.config.upstream_timeout);
      auto [ec, n] =
          co_await http::async_read_header(*upstream_, upstream_buffer_, *response_parser_, kTuple);
      (void)n;
      if (ec) {
        error_ = ec;
        ok = false;
        break;
      }
      const unsigned status = response_parser_->get().result_int();
      if (status < 100 || status >= 200) break;
    }
    client_gone_ = watch->client_gone();
    watch->stop();
    co_return ok && !client_gone_;
  }

  asio::awaitable<ExchangeEnd> exchange() {
    bool reused = false;
    for (int attempt = 0; attempt < 2; ++attempt) {
      error_ = {};
      client_.upstream = nullptr;
      upstream_.reset();
      // The retry always takes a fresh connection: when one pooled connection was dead (Home
      // Assistant restarted), the others usually are too.
      std::optional<tcp::socket> idle;
      if (attempt == 0) idle = client_.upstream_pool.take(!has_body_);
      if (idle) {
        upstream_.emplace(std::move(*idle));
        client_.upstream = &*upstream_;
        reused = true;
      } else {
        reused = false;
        if (!co_await connect_fresh()) co_return co_await upstream_failed(false);
      }
      const bool body_untouched = !has_body_;
      if (!co_await send_request()) {
        if (client_failed_) co_return co_await client_body_failed();
        // A pooled connection the server closed meanwhile: retry once on a fresh one, as
        // long as no body byte has been consumed from the client.
        if (reused && !body_parser_) continue;
        co_return co_await upstream_failed(false);
      }
      if (!co_await read_response_header()) {
        if (client_gone_) co_return ExchangeEnd::close;
        if (reused && body_untouched && upstream_buffer_.size() == 0 &&
            (error_ == http::error::end_of_stream || error_ == asio::error::eof ||
             error_ == asio::error::connection_reset)) {
          continue;
        }
        co_return co_await upstream_failed(false);
      }
      co_return co_await relay_response();
    }
    co_return co_await upstream_failed(false);
  }

  asio::awaitable<ExchangeEnd> client_body_failed() {
    if (upstream_) upstream_->close();
    const auto ec = error_;
    if (ec == http::error::body_limit) {
      co_return co_await reply_json(client_, ctx_, 413, std::string(kBodyTooLargeBody), false);
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      co_return ExchangeEnd::close;
    }
    co_return co_await reply_json(client_, ctx_, 400, std::string(kBadRequestBody), false);
  }

  asio::awaitable<ExchangeEnd> upstream_failed(bool headers_sent) {
    if (upstream_) upstream_->close();
    ctx_.stats.http_upstream_errors.fetch_add(1);
    log::warn("Upstream HTTP error", error_ ? error_.message() : std::string("unknown error"));
    if (headers_sent) co_return ExchangeEnd::close;
    const bool body_done = !has_body_ || (body_parser_ && body_parser_->is_done());
    co_return co_await reply_json(client_, ctx_, 502, std::string(kUpstreamErrorBody),
                                  client_keep_alive_ && body_done);
  }

  // Writes the serializer's next part to the client: the header only, or as much of the message
  // as the body buffer holds. False when the client went away; the upstream connection is then
  // closed, so Home Assistant stops sending.
  asio::awaitable<bool> write_to_client(http::response_serializer<http::buffer_body>& serializer,
                                        bool header_only) {
    client_.stream.expires_after(ctx_.config.io_timeout);
    auto [ec, n] = header_only
                       ? co_await http::async_write_header(client_.stream, serializer, kTuple)
                       : co_await http::async_write(client_.stream, serializer, kTuple);
    (void)n;
    if (ec == http::error::need_buffer) ec = {};  // a buffer_body part written in full
    if (ec) upstream_->close();
    co_return !ec;
  }

  asio::awaitable<ExchangeEnd> relay_response() {
    auto& upstream_res = response_parser_->get();
    const unsigned status = upstream_res.result_int();
    http::response<http::buffer_body> res;
    res.result(status);
    res.version(11);
    for (const auto& field : upstream_res) {
      const auto name = field.name_string();
      if (is_hop_by_hop(name) || text::iequals(name, "content-length")) continue;
      res.insert(name, field.value());
    }
    const bool bodiless = method_ == "HEAD" || status == 204 || status == 304;
    bool keep_alive = client_keep_alive_ && !client_.stopping && !ctx_.connections.stopping();
    if (auto length = response_parser_->content_length()) {
      if (!bodiless || method_ == "HEAD") res.content_length(*length);
    } else if (!bodiless) {
      if (client_version_ >= 11) {
        res.chunked(true);  // upstream length unknown: re-chunk
      } else {
        keep_alive = false;  // HTTP/1.0 client: the end of the body is the end of the connection
      }
    }
    res.keep_alive(keep_alive);
    const bool upstream_reusable = upstream_res.keep_alive();

    const bool capture = capture_flow_body(method_, target_.client_path, status);
    std::string captured;

    http::response_serializer<http::buffer_body> serializer{res};
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = !response_parser_->is_done();
    const auto length = response_parser_->content_length();
    const bool whole_body_buffered = length && upstream_buffer_.size() >= *length;
    // A large body of known length (camera images) moves between the sockets inside the kernel.
    const bool splice_body = !whole_body_buffered && !bodiless && !capture && length &&
                             *length - upstream_buffer_.size() >= kSpliceThreshold;
    bool body_relayed = false;
    if (whole_body_buffered && !bodiless) {
      // The hot path (small JSON answers): the whole body is already in our read buffer, so the
      // header and the body go out in one write, straight from that buffer.
      const auto whole = static_cast<std::size_t>(*length);
      const auto* bytes = static_cast<const char*>(upstream_buffer_.data().data());
      if (capture) captured.assign(bytes, std::min(whole, kFlowBodyCapture));
      res.body().data = whole ? const_cast<char*>(bytes) : nullptr;
      res.body().size = whole;
      res.body().more = false;
      if (!co_await write_to_client(serializer, false)) co_return ExchangeEnd::close;
      upstream_buffer_.consume(whole);
      body_relayed = true;
    } else if (splice_body) {
      // The header and whatever body bytes came with it go out first, from our buffer; the
      // rest never enters user space.
      // With no body bytes buffered the header is written on its own: given an empty buffer
      // with more to come, Beast's serializer would report need_buffer before the header.
      const std::size_t buffered = upstream_buffer_.size();
      res.body().data = buffered ? const_cast<void*>(upstream_buffer_.data().data()) : nullptr;
      res.body().size = buffered;
      res.body().more = true;
      if (!co_await write_to_client(serializer, /*header_only=*/buffered == 0)) {
        co_return ExchangeEnd::close;
      }
      client_.stream.expires_never();
      upstream_buffer_.consume(buffered);
      upstream_->expires_never();
      beast::error_code move_error;
      const auto moved =
          co_await move_bytes(upstream_->socket(), client_.stream.socket(), *length - buffered,
                              ctx_.config.upstream_timeout, ctx_.config.io_timeout, move_error);
      if (moved == MoveResult::source_failed) {
        error_ = move_error;  // Home Assistant went away mid-body: the client's connection ends
        client_.stream.close();
        co_return co_await upstream_failed(true);
      }
      if (moved == MoveResult::sink_failed) {
        upstream_->close();  // the client went away: stop reading from Home Assistant
        co_return ExchangeEnd::close;
      }
      body_relayed = true;
    } else {
      // Streaming: the header goes first, so a client sees the status before the first chunk.
      if (!co_await write_to_client(serializer, /*header_only=*/true)) {
        co_return ExchangeEnd::close;
      }
    }

    const std::size_t chunk_size = std::min<std::uint64_t>(kChunk, length.value_or(kChunk));
    std::unique_ptr<char[]> chunk;
    while (!body_relayed && !serializer.is_done() && !response_parser_->is_done()) {
      if (!chunk) chunk = chunk_buffer(chunk_size);
      response_parser_->get().body().data = chunk.get();
      response_parser_->get().body().size = chunk_size;
      upstream_->expires_after(ctx_.config.upstream_timeout);
      auto [rec, rn] =
          co_await http::async_read(*upstream_, upstream_buffer_, *response_parser_, kTuple);
      (void)rn;
      if (rec == http::error::need_buffer) rec = {};
      if (rec) {
        // Home Assistant went away mid-body: the client must not mistake the truncated body
        // for a whole one, so its connection ends too.
        error_ = rec;
        client_.stream.close();
        co_return co_await upstream_failed(true);
      }
      const std::size_t got = chunk_size - response_parser_->get().body().size;
      if (capture && captured.size() < kFlowBodyCapture) {
        captured.append(chunk.get(), std::min(got, kFlowBodyCapture - captured.size()));
      }
      res.body().data = got ? chunk.get() : nullptr;
      res.body().size = got;
      res.body().more = !response_parser_->is_done();
      if (!co_await write_to_client(serializer, false)) co_return ExchangeEnd::close;
    }
    if (!body_relayed && !serializer.is_done()) {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
      if (!co_await write_to_client(serializer, false)) co_return ExchangeEnd::close;
    }
    client_.stream.expires_never();

    if (status < 200 || status > 299) {
      log::Fields fields;
      fields.add("path", target_.client_path).add("status", static_cast<int>(status));
      if (is_expected_flow_error(method_, target_.client_path, status, captured)) {
        log::info("Upstream HTTP non-2xx", fields);
      } else {
        log::warn("Upstream HTTP non-2xx", fields);
      }
    }

    if (upstream_reusable && upstream_buffer_.size() == 0 && upstream_->socket().is_open()) {
      upstream_->expires_never();
      client_.upstream_pool.give_back(upstream_->release_socket());
    } else {
      upstream_->close();
    }
    client_.upstream = nullptr;
    co_return keep_alive ? ExchangeEnd::keep_alive : ExchangeEnd::close;
  }

  ClientConnection& client_;
  BridgeContext& ctx_;
  http::request_parser<http::empty_body>& header_;
  const NormalisedTarget& target_;
  const std::string method_;
  const bool client_keep_alive_;
  const unsigned client_version_;

  http::request<http::buffer_body> upstream_req_;
  bool has_body_ = false;
  std::optional<beast::tcp_stream> upstream_;
  beast::flat_buffer upstream_buffer_;
  std::optional<http::request_parser<http::buffer_body>> body_parser_;
  std::optional<http::response_parser<http::buffer_body>> response_parser_;
  beast::error_code error_;
  bool client_failed_ = false;
  bool client_gone_ = false;
};

}  // namespace

asio::awaitable<ExchangeEnd> relay_http(ClientConnection& client, BridgeContext& ctx,
                                        http::request_parser<http::empty_body>& header,
                                        const NormalisedTarget& target) {
  Exchange exchange(client, ctx, header, target);
  const auto end = co_await exchange.run();
  client.upstream = nullptr;
  co_return end;
}

}  // namespace dinodia::ha_bridge::detail
