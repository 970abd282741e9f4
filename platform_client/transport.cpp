#include "platform_client/transport.hpp"

#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/detached_thread.hpp"
#include "platform_client/url.hpp"

#ifndef DINODIA_PLATFORM_CLIENT_VERSION
#define DINODIA_PLATFORM_CLIENT_VERSION "0.0.0"
#endif

namespace dinodia::platform_client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

// A CA store with the system bundle, the file SSL_CERT_FILE names (OpenSSL's own default
// lookup replaces the system file with it; we want both), and an optional extra bundle.
X509_STORE* make_ca_store(const std::string& extra_ca_file) {
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return nullptr;
  X509_STORE_set_default_paths(store);  // honours SSL_CERT_FILE / SSL_CERT_DIR
  const char* system_file = X509_get_default_cert_file();
  if (system_file != nullptr) X509_STORE_load_file(store, system_file);
  const char* system_dir = X509_get_default_cert_dir();
  if (system_dir != nullptr) X509_STORE_load_path(store, system_dir);
  if (!extra_ca_file.empty()) X509_STORE_load_file(store, extra_ca_file.c_str());
  return store;
}

std::string bare_host(const std::string& host) {
  if (host.size() > 2 && host.front() == '[') return host.substr(1, host.size() - 2);
  return host;
}

// A lookup result handed from the lookup thread to the caller.
struct Lookup {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  bool found = false;
  std::vector<tcp::endpoint> endpoints;
};

// getaddrinfo cannot be interrupted, and Asio's resolver joins its lookup thread when the
// io_context goes away, so a stuck name server would hold the caller past its deadline. The
// lookup runs on a detached thread instead; the caller stops waiting at the deadline.
// Returns "" with `endpoints` filled, or the error class ("dns", "timeout", "other").
std::string resolve(const std::string& host, int port, Clock::time_point deadline,
                    std::vector<tcp::endpoint>& endpoints) {
  auto lookup = std::make_shared<Lookup>();
  const bool started = threads::start_detached([lookup, host, port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::vector<tcp::endpoint> found;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &list) == 0) {
      for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        tcp::endpoint endpoint;
        if (ai->ai_addrlen > endpoint.capacity()) continue;
        std::memcpy(endpoint.data(), ai->ai_addr, ai->ai_addrlen);
        endpoint.resize(ai->ai_addrlen);
        endpoint.port(static_cast<unsigned short>(port));
        found.push_back(endpoint);
      }
    }
    if (list != nullptr) freeaddrinfo(list);
    std::lock_guard lock(lookup->mutex);
    lookup->found = !found.empty();
    lookup->endpoints = std::move(found);
    lookup->done = true;
    lookup->done_cv.notify_all();
  });
  if (!started) return "other";  // no thread could be started
  std::unique_lock lock(lookup->mutex);
  if (!lookup->done_cv.wait_until(lock, deadline, [&] { return lookup->done; })) return "timeout";
  if (!lookup->found) return "dns";
  endpoints = std::move(lookup->endpoints);
  return "";
}

// One request on a private io_context. Each asynchronous step runs until it completes or its
// deadline passes; at the deadline the socket is closed, which makes the pending operation
// complete (aborted), so nothing outlives the call and nothing blocks without a deadline.
class Exchange {
 public:
  Exchange(const Url& url, const TransportOptions& options, Clock::time_point started)
      : url_(url),
        host_(bare_host(url.host)),
        options_(options),
        deadline_(started + options.total_timeout) {}

  HttpResult run(http::verb method, const std::string& body, const Headers& extra_headers);

 private:
  // Runs the io_context until `done` is set or `deadline` passes. False on the deadline.
  bool wait(const bool& done, Clock::time_point deadline);
  // Starts one asynchronous operation (`start` is given its completion handler) and runs it to
  // completion or `deadline`: false on the deadline, otherwise `ec` holds its result.
  template <typename Start>
  bool step(Start start, Clock::time_point deadline, beast::error_code& ec);
  std::string connect();
  std::string handshake(asio::ssl::stream<tcp::socket&>& tls);
  template <typename Stream>
  HttpResult exchange(Stream& stream, const http::request<http::string_body>& request);

  const Url& url_;
  const std::string host_;
  const TransportOptions& options_;
  const Clock::time_point deadline_;
  asio::io_context io_;
  tcp::socket socket_{io_};
};

bool Exchange::wait(const bool& done, Clock::time_point deadline) {
  io_.restart();
  while (!done && io_.run_one_until(deadline) != 0) {
  }
  if (done) return true;
  beast::error_code ignored;
  socket_.close(ignored);  // aborts the pending operation
  io_.restart();
  io_.run();
  return false;
}

template <typename Start>
bool Exchange::step(Start start, Clock::time_point deadline, beast::error_code& ec) {
  bool done = false;
  start([&](beast::error_code e, auto&&...) {
    ec = e;
    done = true;
  });
  return wait(done, deadline);
}

std::string Exchange::connect() {
  std::vector<tcp::endpoint> endpoints;
  // The name lookup is bounded by the total deadline only, as before: a slow first name
  // server is not a connect timeout.
  std::string error = resolve(host_, url_.port, deadline_, endpoints);
  if (!error.empty()) return error;
  // The connect timeout starts once the addresses are known (as cpp-httplib's did).
  const auto deadline = std::min(Clock::now() + options_.connect_timeout, deadline_);
  beast::error_code ec;
  const bool completed =
      step([&](auto handler) { asio::async_connect(socket_, endpoints, handler); }, deadline, ec);
  if (!completed) return "timeout";
  return ec ? "connect" : "";
}

std::string Exchange::handshake(asio::ssl::stream<tcp::socket&>& tls) {
  SSL* ssl = tls.native_handle();
  beast::error_code ec;
  asio::ip::make_address(host_, ec);
  const bool is_ip = !ec;
  // SNI carries names only; an IP literal is checked against the certificate's IP SANs.
  if (!is_ip && SSL_set_tlsext_host_name(ssl, host_.c_str()) != 1) return "tls";
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str())
                        : X509_VERIFY_PARAM_set1_host(param, host_.c_str(), host_.size());
  if (set != 1) return "tls";
  const bool completed =
      step([&](auto handler) { tls.async_handshake(asio::ssl::stream_base::client, handler); },
           deadline_, ec);
  if (!completed) return "timeout";
  return ec ? "tls" : "";
}

template <typename Stream>
HttpResult Exchange::exchange(Stream& stream, const http::request<http::string_body>& request) {
  HttpResult result;
  beast::error_code ec;
  // One step of the exchange: false when it failed, with the error class in `result`.
  auto run_step = [&](auto start, const char* failure) {
    if (!step(start, deadline_, ec)) {
      result.error = "timeout";
      return false;
    }
    if (ec) result.error = failure;
    return !ec;
  };
  if (!run_step([&](auto handler) { http::async_write(stream, request, handler); }, "write")) {
    return result;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(boost::none);  // the loop below stops at kMaxResponseBytes itself
  if (!run_step([&](auto handler) { http::async_read_header(stream, buffer, parser, handler); },
                "read")) {
    return result;
  }

  // The body is read in pieces so that an oversized one is never buffered whole.
  std::string body;
  bool truncated = false;
  std::array<char, 16 * 1024> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    if (!step([&](auto handler) { http::async_read(stream, buffer, parser, handler); }, deadline_,
              ec)) {
      result.error = "timeout";
      return result;
    }
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t n = chunk.size() - parser.get().body().size;
    if (body.size() + n > kMaxResponseBytes) {
      body.append(chunk.data(), kMaxResponseBytes - body.size());
      truncated = true;
      break;
    }
    body.append(chunk.data(), n);
    // A TLS peer that ends a read-until-close body without close_notify: the body is complete
    // by HTTP's rules, as every common client treats it.
    if (ec == asio::ssl::error::stream_truncated && parser.need_eof()) {
      ec = {};
      parser.put_eof(ec);
    }
    if (ec) {
      result.error = "read";
      return result;
    }
  }

  const auto& response = parser.get();
  result.status = static_cast<int>(response.result_int());
  result.body = std::move(body);
  result.truncated = truncated;
  result.backend = std::string(response["x-dinodia-api-backend"]);
  if (response.find(http::field::date) != response.end()) {
    result.date_unix = clock::parse_http_date(response[http::field::date]);
  }
  return result;
}

HttpResult Exchange::run(http::verb method, const std::string& body, const Headers& extra_headers) {
  http::request<http::string_body> request{method, url_.target(), 11};
  request.set(http::field::host,
              url_.default_port ? url_.host : url_.host + ":" + std::to_string(url_.port));
  request.set(http::field::user_agent, options_.user_agent);
  request.set(http::field::accept, "application/json");
  request.set(http::field::connection, "close");  // one request per connection
  for (const auto& [name, value] : extra_headers) request.set(name, value);
  if (method == http::verb::post) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.prepare_payload();

  HttpResult failed;
  failed.error = connect();
  if (!failed.error.empty()) return failed;
  if (url_.scheme != "https") return exchange(socket_, request);

  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
  X509_STORE* store = make_ca_store(options_.ca_file);
  if (store == nullptr) {
    failed.error = "tls";
    return failed;
  }
  SSL_CTX_set_cert_store(context.native_handle(), store);  // the context owns it now
  context.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket&> tls(socket_, context);
  failed.error = handshake(tls);
  if (!failed.error.empty()) return failed;
  // No close_notify on the way out: the connection is not reused, and waiting for the peer's
  // reply would only add latency.
  return exchange(tls, request);
}

HttpResult perform(http::verb method, const std::string& url_text, const std::string& body,
                   const Headers& extra_headers, const TransportOptions& options) {
  const auto started = Clock::now();
  HttpResult result;
  // A line break in a header value (a bad token or User-Agent) would split the request.
  bool unsafe_header = options.user_agent.find_first_of("\r\n") != std::string::npos;
  for (const auto& header : extra_headers) {
    if (header.second.find_first_of("\r\n") != std::string::npos) unsafe_header = true;
  }
  if (unsafe_header) {
    result.error = "other";
  } else if (auto url = parse_url(url_text)) {
    try {
      result = Exchange(*url, options, started).run(method, body, extra_headers);
    } catch (const std::exception&) {
      // Out of memory, or a TLS context OpenSSL would not build: never thrown to the caller.
      result = HttpResult{};
      result.error = "other";
    }
  } else {
    result.error = "url";
  }
  result.latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return result;
}

TransportOptions with_default_agent(TransportOptions options) {
  if (options.user_agent.empty()) options.user_agent = default_user_agent();
  return options;
}

// Holds only its options: every request builds its own connection, so concurrent calls from
// several threads are safe.
class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(TransportOptions options)
      : options_(with_default_agent(std::move(options))) {}

  HttpResult post_json(const std::string& url, const std::string& body) override {
    return perform(http::verb::post, url, body, {}, options_);
  }
  HttpResult get(const std::string& url) override {
    return perform(http::verb::get, url, "", {}, options_);
  }

 private:
  const TransportOptions options_;
};

}  // namespace

std::string default_user_agent() {
  return std::string("dinodia-hub-agent/") + DINODIA_PLATFORM_CLIENT_VERSION;
}

std::unique_ptr<Transport> make_http_transport(TransportOptions options) {
  return std::make_unique<HttpTransport>(std::move(options));
}

HttpResult get_with_bearer_token(const std::string& url, const std::string& token,
                                 const TransportOptions& options) {
  return perform(http::verb::get, url, "", {{"Authorization", "Bearer " + token}},
                 with_default_agent(options));
}

}  // namespace dinodia::platform_client
