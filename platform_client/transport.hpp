#pragma once
// Outbound HTTP(S) for the platform client. The interface keeps Boost.Beast/Asio and OpenSSL out
// of every includer; the agent can substitute its own Transport in tests of the sync cycle.
//
// Asynchronous style: none visible. Every call blocks the calling thread until the answer or the
// deadline; inside, each request runs on a private io_context of its own, so a slow platform can
// never stall the bridge's event loop. The agent makes these calls from its sync thread only.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace dinodia::platform_client {

// Responses bigger than this are cut off and flagged; no platform answer comes close.
inline constexpr std::size_t kMaxResponseBytes = std::size_t{1024} * 1024;

struct HttpResult {
  int status = 0;                         // 0 = transport failure (see error)
  std::string body;                       // response body (may be truncated to 1 MiB)
  bool truncated = false;                 // body exceeded kMaxResponseBytes
  std::string backend;                    // x-dinodia-api-backend response header, or ""
  std::optional<std::int64_t> date_unix;  // parsed Date response header
  // Transport error class: "connect", "timeout", "tls", "dns", "read", "write", "url",
  // "too_large", "other". Empty when a response arrived.
  std::string error;
  std::chrono::milliseconds latency{0};
};

struct TransportOptions {
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds total_timeout{15};
  std::string user_agent;  // "dinodia-hub-agent/<version>"; empty = that with the project version
  std::string ca_file;     // extra CA bundle (PEM); empty = system store (+ SSL_CERT_FILE)
};

class Transport {
 public:
  virtual ~Transport() = default;
  // POST application/json to an absolute http(s) URL. Never throws for network problems.
  virtual HttpResult post_json(const std::string& url, const std::string& body) = 0;
  virtual HttpResult get(const std::string& url) = 0;
};

// Boost.Beast/Asio, one connection per request; HTTPS with certificate verification against the
// system CA store (plus the file named by SSL_CERT_FILE, plus options.ca_file), SNI, User-Agent,
// connect + read/write timeouts and a hard total deadline.
std::unique_ptr<Transport> make_http_transport(TransportOptions options);

// A GET with `Authorization: Bearer <token>` (the Supervisor check of `doctor`), with the same
// timeouts, verification and error classes as the transport. A token with a line break is
// refused before anything is sent.
HttpResult get_with_bearer_token(const std::string& url, const std::string& token,
                                 const TransportOptions& options);

// Default User-Agent: "dinodia-hub-agent/<project version>".
std::string default_user_agent();

}  // namespace dinodia::platform_client
