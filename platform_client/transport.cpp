#include "platform_client/transport.hpp"

#include <httplib.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/clock.hpp"
#include "platform_client/url.hpp"

#ifndef DINODIA_PLATFORM_CLIENT_VERSION
#define DINODIA_PLATFORM_CLIENT_VERSION "0.0.0"
#endif

namespace dinodia::platform_client {
namespace {

using Clock = std::chrono::steady_clock;

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

bool host_resolves(const std::string& host) {
  std::string name = host;
  if (name.size() > 2 && name.front() == '[') name = name.substr(1, name.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(name.c_str(), nullptr, &hints, &result);
  if (result != nullptr) freeaddrinfo(result);
  return rc == 0;
}

// State shared between the caller (who may give up at the deadline) and the worker thread
// that runs the blocking cpp-httplib request.
struct Exchange {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  HttpResult result;
  std::unique_ptr<httplib::ClientImpl> client;
};

class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(TransportOptions options) : options_(std::move(options)) {
    if (options_.user_agent.empty()) options_.user_agent = default_user_agent();
  }

  HttpResult post_json(const std::string& url, const std::string& body) override {
    return run("POST", url, body);
  }
  HttpResult get(const std::string& url) override { return run("GET", url, ""); }

 private:
  HttpResult run(const std::string& method, const std::string& url_text, const std::string& body);

  TransportOptions options_;
};

std::unique_ptr<httplib::ClientImpl> make_client(const Url& url, const TransportOptions& opts) {
  std::string host = url.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::unique_ptr<httplib::ClientImpl> client;
  if (url.scheme == "https") {
    auto ssl = std::make_unique<httplib::SSLClient>(host, url.port);
    ssl->enable_server_certificate_verification(true);
    if (X509_STORE* store = make_ca_store(opts.ca_file)) ssl->set_ca_cert_store(store);
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host, url.port);
  }
  client->set_connection_timeout(opts.connect_timeout);
  client->set_read_timeout(opts.total_timeout);
  client->set_write_timeout(opts.total_timeout);
  client->set_keep_alive(false);
  client->set_follow_location(false);  // legacy fetch follows, but platform routes never redirect
  client->set_compress(false);
  client->set_decompress(true);
  return client;
}

std::string classify_error(httplib::Error error, const std::string& host, Clock::duration elapsed,
                           const TransportOptions& opts) {
  switch (error) {
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLServerVerification:
    case httplib::Error::SSLLoadingCerts:
      return "tls";
    case httplib::Error::ConnectionTimeout:
      return "timeout";
    case httplib::Error::Connection:
      if (!host_resolves(host)) return "dns";
      return elapsed >= opts.connect_timeout - std::chrono::milliseconds(100) ? "timeout"
                                                                              : "connect";
    case httplib::Error::Read:
      return elapsed >= opts.total_timeout - std::chrono::milliseconds(100) ? "timeout" : "read";
    case httplib::Error::Write:
      return "write";
    case httplib::Error::Canceled:
      return "too_large";  // our receiver only cancels on the size cap
    default:
      return "other";
  }
}

HttpResult HttpTransport::run(const std::string& method, const std::string& url_text,
                              const std::string& body) {
  const auto started = Clock::now();
  auto finish = [&](HttpResult r) {
    r.latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    return r;
  };
  auto url = parse_url(url_text);
  if (!url) {
    HttpResult r;
    r.error = "url";
    return finish(r);
  }

  auto exchange = std::make_shared<Exchange>();
  exchange->client = make_client(*url, options_);
  httplib::ClientImpl* client = exchange->client.get();

  // The worker owns a share of the exchange: if the caller gives up at the deadline, the worker
  // still has a live client and result to write into until its socket call returns.
  std::thread worker([exchange, client, method, target = url->target(), body, host = url->host,
                      opts = options_, started]() {
    HttpResult r;
    httplib::Request req;
    req.method = method;
    req.path = target;
    req.headers.emplace("User-Agent", opts.user_agent);
    req.headers.emplace("Accept", "application/json");
    if (method == "POST") {
      req.headers.emplace("Content-Type", "application/json");
      req.body = body;
    }
    std::string received;
    bool too_large = false;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (received.size() + len > kMaxResponseBytes) {
        received.append(data, kMaxResponseBytes - received.size());
        too_large = true;
        return false;
      }
      received.append(data, len);
      return true;
    };
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    bool ok = client->send(req, res, error);
    if (ok || (too_large && res.status > 0)) {
      r.status = res.status;
      r.body = std::move(received);
      r.truncated = too_large;
      r.backend = res.get_header_value("x-dinodia-api-backend");
      if (res.has_header("Date"))
        r.date_unix = clock::parse_http_date(res.get_header_value("Date"));
    } else {
      r.error = classify_error(error, host, Clock::now() - started, opts);
    }
    std::lock_guard lock(exchange->mutex);
    exchange->result = std::move(r);
    exchange->done = true;
    exchange->done_cv.notify_all();
  });

  std::unique_lock lock(exchange->mutex);
  const auto deadline = started + options_.total_timeout;
  if (exchange->done_cv.wait_until(lock, deadline, [&] { return exchange->done; })) {
    lock.unlock();
    worker.join();
    return finish(std::move(exchange->result));
  }
  lock.unlock();
  // Past the hard deadline: shut the socket so the worker returns soon, and do not wait for it
  // (a stuck name lookup cannot be interrupted).
  client->stop();
  worker.detach();
  HttpResult r;
  r.error = "timeout";
  return finish(r);
}

}  // namespace

std::string default_user_agent() {
  return std::string("dinodia-hub-agent/") + DINODIA_PLATFORM_CLIENT_VERSION;
}

std::unique_ptr<Transport> make_http_transport(TransportOptions options) {
  return std::make_unique<HttpTransport>(std::move(options));
}

}  // namespace dinodia::platform_client
