#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "common/clock.hpp"
#include "platform_client/hub_signer.hpp"
#include "platform_client/platform_api.hpp"
#include "platform_client/transport.hpp"
#include "tests/support/local_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/time_scale.hpp"
#include "tests/support/transport_options.hpp"

using namespace dinodia::platform_client;
using dinodia::testing::fast_transport_options;
using dinodia::testing::LocalServer;
using dinodia::testing::make_cert;
using dinodia::testing::TempDir;
using dinodia::testing::TestCert;
using dinodia::testing::tls_transport_options;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Sleeps up to `total` but returns early once the server is being torn down.
void sleep_unless_stopping(const LocalServer& s, std::chrono::milliseconds total) {
  auto until = std::chrono::steady_clock::now() + total;
  while (!s.stopping && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
}

HttpResult http(int status, std::string body) {
  HttpResult r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string envelope(int status, const std::string& error) {
  const char* code = status == 401 ? "UNAUTHORIZED" : status == 404 ? "NOT_FOUND" : "INVALID_INPUT";
  return json{{"ok", false}, {"errorCode", code}, {"error", error}}.dump();
}

const std::string kHashA(64, 'a');
const std::string kHashB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("pair_url keeps only the origin of the base", "[platform_api][url]") {
  CHECK(pair_url("https://app.dinodiasmartliving.com") ==
        "https://app.dinodiasmartliving.com/api/hub-agent/pair");
  CHECK(pair_url("https://app.dinodiasmartliving.com/") ==
        "https://app.dinodiasmartliving.com/api/hub-agent/pair");
  CHECK(pair_url("https://example.com/some/prefix?q=1#f") ==
        "https://example.com/api/hub-agent/pair");
  CHECK(pair_url("HTTPS://Example.COM:443/x") == "https://example.com/api/hub-agent/pair");
  CHECK(pair_url("http://127.0.0.1:8080/base/") == "http://127.0.0.1:8080/api/hub-agent/pair");
  CHECK(pair_url("  https://example.com  ") == "https://example.com/api/hub-agent/pair");
  CHECK(pair_url("ftp://example.com").empty());
  CHECK(pair_url("example.com").empty());
  CHECK(pair_url("").empty());
  CHECK(pair_url("https://example.com:99999").empty());
}

TEST_CASE("token_state_url resolves the endpoint as a URL reference", "[platform_api][url]") {
  const std::string base = "https://app.dinodiasmartliving.com";
  CHECK(token_state_url(base, "/api/hub-agent/token-state") ==
        "https://app.dinodiasmartliving.com/api/hub-agent/token-state");
  CHECK(token_state_url(base, "") ==
        "https://app.dinodiasmartliving.com/api/hub-agent/token-state");
  // An absolute path replaces the base path.
  CHECK(token_state_url("https://example.com/prefix", "/api/x") == "https://example.com/api/x");
  // A relative path merges with the base's directory (options strip the trailing slash).
  CHECK(token_state_url("https://example.com/prefix", "api/x") == "https://example.com/api/x");
  CHECK(token_state_url("https://example.com/prefix/", "api/x") ==
        "https://example.com/prefix/api/x");
  CHECK(token_state_url("https://example.com/a/b/", "../c") == "https://example.com/a/c");
  // An absolute URL overrides the host; a network-path reference keeps the scheme.
  CHECK(token_state_url(base,
                        "https://api-origin.dinodiasmartliving.com/api/hub-agent/token-state") ==
        "https://api-origin.dinodiasmartliving.com/api/hub-agent/token-state");
  CHECK(token_state_url(base, "//other.example:8443/ts") == "https://other.example:8443/ts");
  CHECK(token_state_url("http://127.0.0.1:1234", "/ts?x=1#frag") == "http://127.0.0.1:1234/ts?x=1");
  CHECK(token_state_url(base, "mailto:x@example.com").empty());
  CHECK(token_state_url("not a url", "/x").empty());
}

TEST_CASE("classify maps every documented status and message", "[platform_api][classify]") {
  CHECK(PlatformApi::classify(http(200, "{}")) == Failure::none);
  CHECK(PlatformApi::classify(http(400, envelope(400, "Invalid body"))) == Failure::client_error);
  CHECK(PlatformApi::classify(http(400, envelope(400, "serial, ts, nonce, sig are required."))) ==
        Failure::client_error);
  CHECK(PlatformApi::classify(http(404, envelope(404, "Unknown hub serial."))) ==
        Failure::unknown_serial);
  CHECK(PlatformApi::classify(http(404, "<html>Not Found</html>")) == Failure::client_error);
  CHECK(PlatformApi::classify(http(401, envelope(401, "Hub not paired yet."))) ==
        Failure::not_paired);
  CHECK(PlatformApi::classify(http(401, envelope(401, "Invalid hub signature."))) ==
        Failure::bad_signature);
  CHECK(PlatformApi::classify(http(401, envelope(401, "Replay detected"))) == Failure::replay);
  CHECK(PlatformApi::classify(
            http(401, envelope(401, "A signed hub identity request is required."))) ==
        Failure::other_unauthorized);
  CHECK(PlatformApi::classify(http(401, "")) == Failure::other_unauthorized);
  CHECK(PlatformApi::classify(http(403, envelope(403, "Forbidden"))) ==
        Failure::other_unauthorized);
  // Older deployments: {"error": ...} only, with the raw HMAC reason.
  CHECK(PlatformApi::classify(http(401, R"({"error":"Hub not paired yet."})")) ==
        Failure::not_paired);
  CHECK(PlatformApi::classify(http(401, R"({"error":"Timestamp outside allowed window"})")) ==
        Failure::bad_signature);
  CHECK(PlatformApi::classify(http(410, R"({"ok":false,"errorCode":"legacy_pairing_retired"})")) ==
        Failure::client_error);
  CHECK(PlatformApi::classify(http(429, "")) == Failure::client_error);
  CHECK(PlatformApi::classify(http(500, "Internal Server Error")) == Failure::server_error);
  CHECK(PlatformApi::classify(http(503, "")) == Failure::server_error);
  HttpResult timeout;
  timeout.error = "timeout";
  CHECK(PlatformApi::classify(timeout) == Failure::timeout);
  HttpResult refused;
  refused.error = "connect";
  CHECK(PlatformApi::classify(refused) == Failure::transport);
}

TEST_CASE("request bodies have the legacy key order", "[platform_api][body]") {
  SignedFields f{"HUB-1", 1700000000, "00112233445566778899aabbccddeeff", std::string(64, 'f')};
  CHECK(PlatformApi::pair_body(f) ==
        R"({"serial":"HUB-1","ts":1700000000,"nonce":"00112233445566778899aabbccddeeff","sig":")" +
            std::string(64, 'f') + "\"}");
  json extra = {{"lanBaseUrl", "http://192.168.1.20:8123"}, {"serial", "EVIL"}, {"sig", "x"}};
  std::string body = PlatformApi::token_state_body(f, 7, extra);
  CHECK(
      body.rfind(
          R"({"serial":"HUB-1","ts":1700000000,"nonce":"00112233445566778899aabbccddeeff","sig":")",
          0) == 0);
  auto parsed = json::parse(body);
  CHECK(parsed["agentSeenVersion"] == 7);
  CHECK(parsed["serial"] == "HUB-1");  // extra keys never overwrite signed fields
  CHECK(parsed["lanBaseUrl"] == "http://192.168.1.20:8123");
  CHECK(body.find("\"agentSeenVersion\":7,\"lanBaseUrl\"") != std::string::npos);
  // Invalid UTF-8 in telemetry does not throw.
  json bad = {{"haAreas", std::string("\xff\xfe")}};
  CHECK_NOTHROW(PlatformApi::token_state_body(f, 0, bad));
  CHECK(json::parse(PlatformApi::token_state_body(f, 0, nullptr)).size() == 5);
}

TEST_CASE("pair responses are validated strictly", "[platform_api][parse]") {
  auto ok = PlatformApi::parse_pair_response(http(
      200, json{{"ok", true},
                {"syncSecret", "  abc  "},
                {"hubTokenHashes", {" " + std::string(64, 'A') + " ", "", 5, "nothex", kHashB}},
                {"latestVersion", 3},
                {"publishedVersion", 2.0}}
               .dump()));
  REQUIRE(ok.failure == Failure::none);
  CHECK(ok.sync_secret == "abc");
  CHECK(ok.hub_token_hashes == std::vector<std::string>{kHashA, kHashB});
  CHECK(ok.latest_version == 3);
  CHECK(ok.published_version == 2);

  auto expect_malformed = [](const std::string& body, const std::string& fragment) {
    auto r = PlatformApi::parse_pair_response(http(200, body));
    INFO(body);
    CHECK(r.failure == Failure::malformed_response);
    CHECK(r.message.find(fragment) != std::string::npos);
    CHECK(r.sync_secret.empty());
    CHECK(r.hub_token_hashes.empty());
  };
  expect_malformed("", "empty");
  expect_malformed("not json", "not valid JSON");
  expect_malformed("[1,2]", "not a JSON object");
  expect_malformed(R"({"hubTokenHashes":[]})", "Pair response missing syncSecret.");
  expect_malformed(R"({"syncSecret":"   "})", "Pair response missing syncSecret.");
  expect_malformed(R"({"syncSecret":42})", "Pair response missing syncSecret.");
  expect_malformed(R"({"syncSecret":"s","hubTokenHashes":"abc"})", "hubTokenHashes");
  expect_malformed(R"({"syncSecret":"s","latestVersion":1.5})", "latestVersion");
  expect_malformed(R"({"syncSecret":"s","latestVersion":"3"})", "latestVersion");
  expect_malformed(R"({"syncSecret":"s","latestVersion":-1})", "latestVersion");
  expect_malformed(R"({"syncSecret":"s","publishedVersion":1e300})", "publishedVersion");
  expect_malformed(std::string(100000, '[') + std::string(100000, ']'), "nested too deeply");
  // A malformed response never echoes the secret it carried.
  auto r = PlatformApi::parse_pair_response(
      http(200, R"({"syncSecret":"topsecretvalue","latestVersion":"x"})"));
  CHECK(r.message.find("topsecretvalue") == std::string::npos);

  HttpResult big = http(200, std::string(kMaxResponseBytes, ' '));
  big.truncated = true;
  CHECK(PlatformApi::parse_pair_response(big).failure == Failure::malformed_response);
}

TEST_CASE("token-state responses keep the raw object and normalised hashes",
          "[platform_api][parse]") {
  auto r = PlatformApi::parse_token_state_response(http(200, json{{"ok", true},
                                                                  {"hubTokenHashes", {kHashA}},
                                                                  {"latestVersion", 4},
                                                                  {"publishedVersion", nullptr},
                                                                  {"heatingUsageResetAt", nullptr}}
                                                                 .dump()));
  REQUIRE(r.failure == Failure::none);
  CHECK(r.hub_token_hashes == std::vector<std::string>{kHashA});
  CHECK(r.latest_version == 4);
  CHECK_FALSE(r.published_version.has_value());
  CHECK(r.raw.contains("heatingUsageResetAt"));
  auto empty = PlatformApi::parse_token_state_response(http(200, R"({"hubTokenHashes":[]})"));
  CHECK(empty.failure == Failure::none);
  CHECK(empty.hub_token_hashes.empty());
  CHECK_FALSE(empty.latest_version.has_value());
  auto bad = PlatformApi::parse_token_state_response(http(200, R"({"hubTokenHashes":{}})"));
  CHECK(bad.failure == Failure::malformed_response);
  CHECK(bad.raw.is_null());
  CHECK(PlatformApi::parse_token_state_response(http(200, "null")).failure ==
        Failure::malformed_response);
}

TEST_CASE("transport posts JSON and reads status, body, Date and backend headers",
          "[platform_api][transport]") {
  LocalServer server;
  std::string seen_body, seen_type, seen_agent;
  server.http().Post("/api/hub-agent/pair",
                     [&](const httplib::Request& req, httplib::Response& res) {
                       seen_body = req.body;
                       seen_type = req.get_header_value("Content-Type");
                       seen_agent = req.get_header_value("User-Agent");
                       res.set_header("Date", "Tue, 14 Nov 2023 22:13:20 GMT");
                       res.set_header("x-dinodia-api-backend", "aws");
                       res.set_content(json{{"ok", true},
                                            {"syncSecret", "s3cr3t"},
                                            {"hubTokenHashes", {kHashB}},
                                            {"latestVersion", 1},
                                            {"publishedVersion", 0}}
                                           .dump(),
                                       "application/json");
                     });
  server.start();
  auto transport = make_http_transport(fast_transport_options());
  PlatformApi api(*transport);
  auto fields = HubSigner::sign_at("HUB-1", "bootstrap", 1700000000);
  auto r = api.pair(server.url("http", "/api/hub-agent/pair"), fields);
  REQUIRE(r.failure == Failure::none);
  CHECK(r.sync_secret == "s3cr3t");
  CHECK(r.hub_token_hashes == std::vector<std::string>{kHashB});
  CHECK(r.http.status == 200);
  CHECK(r.http.backend == "aws");
  CHECK(r.http.date_unix == 1700000000);
  CHECK(seen_body == PlatformApi::pair_body(fields));
  CHECK(seen_type == "application/json");
  CHECK(seen_agent == "dinodia-hub-agent/test");
  CHECK(default_user_agent().rfind("dinodia-hub-agent/", 0) == 0);
}

TEST_CASE("transport reports HTTP errors with the envelope text", "[platform_api][transport]") {
  LocalServer server;
  server.http().Post("/ts", [](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_content(envelope(401, "Hub not paired yet."), "application/json");
  });
  server.start();
  auto transport = make_http_transport(fast_transport_options());
  PlatformApi api(*transport);
  auto r = api.token_state(
      server.url("http", "/ts"),
      PlatformApi::token_state_request(HubSigner::sign_now("HUB-1", "sync"), 0, json::object()));
  CHECK(r.failure == Failure::not_paired);
  CHECK(r.http.status == 401);
  CHECK(r.message == "HTTP 401: Hub not paired yet.");
}

TEST_CASE("a hanging server gives a timeout within the total deadline",
          "[platform_api][transport]") {
  LocalServer server;
  server.http().Post("/hang", [&](const httplib::Request&, httplib::Response& res) {
    sleep_unless_stopping(server, 10s);
    res.set_content("{}", "application/json");
  });
  // Headers at once, then one byte every 300 ms: no single read ever times out.
  server.http().Post("/trickle", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      sleep_unless_stopping(server, 300ms);
      if (server.stopping) return false;
      sink.write(" ", 1);
      return true;
    });
  });
  server.start();
  auto transport = make_http_transport(fast_transport_options());
  for (const char* path : {"/hang", "/trickle"}) {
    INFO(path);
    auto started = std::chrono::steady_clock::now();
    HttpResult r = transport->post_json(server.url("http", path), "{}");
    auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK(r.status == 0);
    CHECK(r.error == "timeout");
    CHECK(elapsed >= 1900ms);
    CHECK(elapsed < 3500ms);
    CHECK(PlatformApi::classify(r) == Failure::timeout);
  }
}

TEST_CASE("a refused connection is a transport failure", "[platform_api][transport]") {
  // Bind a port without listening, note it, close it: nothing accepts there now.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  int port = ntohs(addr.sin_port);
  auto transport = make_http_transport(fast_transport_options());
  HttpResult r = transport->post_json("http://127.0.0.1:" + std::to_string(port) + "/x", "{}");
  CHECK(r.status == 0);
  CHECK(r.error == "connect");
  CHECK(PlatformApi::classify(r) == Failure::transport);
  CHECK(transport->get("not-a-url").error == "url");
}

TEST_CASE("a huge response body is cut at 1 MiB and rejected", "[platform_api][transport]") {
  LocalServer server;
  server.http().Post("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(3 * 1024 * 1024, '['), "application/json");
  });
  server.start();
  auto transport = make_http_transport(fast_transport_options());
  HttpResult r = transport->post_json(server.url("http", "/big"), "{}");
  CHECK(r.status == 200);
  CHECK(r.truncated);
  CHECK(r.body.size() == kMaxResponseBytes);
  PlatformApi api(*transport);
  auto pr = api.pair(server.url("http", "/big"), HubSigner::sign_now("HUB-1", "b"));
  CHECK(pr.failure == Failure::malformed_response);
  CHECK(pr.message == "Platform response is too large.");
}

TEST_CASE("HTTPS verifies the server certificate", "[platform_api][transport][tls]") {
  TempDir dir;
  TestCert cert = make_cert(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
  LocalServer server(std::make_unique<httplib::SSLServer>(cert.cert.c_str(), cert.key.c_str()));
  REQUIRE(server.http().is_valid());
  server.http().Post("/ok", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{}", "application/json");
  });
  server.start();
  const std::string url = server.url("https", "/ok");

  SECTION("an untrusted self-signed certificate fails with tls") {
    auto transport = make_http_transport(tls_transport_options());
    HttpResult r = transport->post_json(url, "{}");
    CHECK(r.status == 0);
    CHECK(r.error == "tls");
    CHECK(PlatformApi::classify(r) == Failure::transport);
  }
  SECTION("trusted through ca_file") {
    auto options = tls_transport_options();
    options.ca_file = cert.cert;
    HttpResult r = make_http_transport(options)->post_json(url, "{}");
    CHECK(r.error.empty());
    CHECK(r.status == 200);
  }
  SECTION("trusted through SSL_CERT_FILE") {
    const char* old = std::getenv("SSL_CERT_FILE");
    std::string saved = old != nullptr ? old : "";
    ::setenv("SSL_CERT_FILE", cert.cert.c_str(), 1);
    HttpResult r = make_http_transport(tls_transport_options())->post_json(url, "{}");
    if (old != nullptr) {
      ::setenv("SSL_CERT_FILE", saved.c_str(), 1);
    } else {
      ::unsetenv("SSL_CERT_FILE");
    }
    CHECK(r.error.empty());
    CHECK(r.status == 200);
  }
}

TEST_CASE("HTTPS rejects a trusted certificate for another host",
          "[platform_api][transport][tls]") {
  TempDir dir;
  TestCert cert = make_cert(dir, "other.example", "DNS:other.example");
  LocalServer server(std::make_unique<httplib::SSLServer>(cert.cert.c_str(), cert.key.c_str()));
  server.http().Post("/ok", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{}", "application/json");
  });
  server.start();
  auto options = tls_transport_options();
  options.ca_file = cert.cert;
  HttpResult r = make_http_transport(options)->post_json(server.url("https", "/ok"), "{}");
  CHECK(r.status == 0);
  CHECK(r.error == "tls");
}
