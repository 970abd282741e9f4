#include "ha_client/rest.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

#include "common/text.hpp"

namespace dinodia::ha_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace {

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

}  // namespace dinodia::ha_client
