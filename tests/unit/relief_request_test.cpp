// Which requests the kiosk relief joins or answers from memory, and their key
// (ha_bridge/detail/relief_request, docs/lan-bridge.md#kiosk-relief).
#include "ha_bridge/detail/relief_request.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

using dinodia::ha_bridge::normalise_target;
using dinodia::ha_bridge::detail::HeaderField;
using dinodia::ha_bridge::detail::is_relief_write;
using dinodia::ha_bridge::detail::kOnConfig;
using dinodia::ha_bridge::detail::kOnRegistry;
using dinodia::ha_bridge::detail::kOnStates;
using dinodia::ha_bridge::detail::parse_head;
using dinodia::ha_bridge::detail::relief_request;
using dinodia::ha_bridge::detail::ReliefRequest;
using dinodia::ha_bridge::detail::RequestHead;
namespace http = boost::beast::http;

namespace {

// The relief identity of a request head (`text` up to and including its blank line).
std::optional<ReliefRequest> identity(const std::string& text) {
  std::vector<HeaderField> fields;
  std::vector<std::string_view> body;
  RequestHead head(fields, body);
  boost::beast::error_code ec;
  parse_head(head, text, ec);
  REQUIRE(!ec);
  const auto target = normalise_target(head.target);
  REQUIRE(target);
  return relief_request(head, *target);
}

const std::string kAuth = "Authorization: Bearer t\r\n";

}  // namespace

TEST_CASE("relief_request: the kiosk's reads are relieved, keyed on what changes the answer") {
  const auto a = identity("GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth +
                          "Accept-Encoding: gzip\r\nUser-Agent: okhttp/4.9.2\r\n\r\n");
  REQUIRE(a);
  CHECK(a->depends == (kOnStates | kOnRegistry | kOnConfig));
  CHECK(a->body_length == 0);

  // Another token, another Host, another spelling of the path: the same request.
  const auto b = identity(
      "GET /api//states HTTP/1.1\r\nHost: other\r\nAuthorization: Bearer u\r\n"
      "User-Agent: okhttp/4.9.2\r\nAccept-Encoding: gzip\r\n\r\n");
  REQUIRE(b);
  CHECK(b->key == a->key);

  // A keyed field that differs, is missing or is empty: another request.
  for (const std::string other :
       {"Accept-Encoding: br\r\nUser-Agent: okhttp/4.9.2\r\n", "User-Agent: okhttp/4.9.2\r\n",
        "Accept-Encoding: \r\nUser-Agent: okhttp/4.9.2\r\n"}) {
    const auto c = identity("GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + other + "\r\n");
    REQUIRE(c);
    CHECK(c->key != a->key);
  }
  // Another query: another request.
  const auto q = identity("GET /api/states?x=1 HTTP/1.1\r\nHost: h\r\n" + kAuth +
                          "Accept-Encoding: gzip\r\nUser-Agent: okhttp/4.9.2\r\n\r\n");
  REQUIRE(q);
  CHECK(q->key != a->key);

  const auto probe = identity("GET /api/ HTTP/1.1\r\nHost: h\r\n" + kAuth + "\r\n");
  REQUIRE(probe);
  CHECK(probe->depends == 0);
  const auto config = identity("GET /api/config HTTP/1.1\r\nHost: h\r\n" + kAuth + "\r\n");
  REQUIRE(config);
  CHECK(config->depends == kOnConfig);

  const auto render = identity("POST /api/template HTTP/1.1\r\nHost: h\r\n" + kAuth +
                               "Content-Type: application/json\r\nContent-Length: 20\r\n\r\n");
  REQUIRE(render);
  CHECK(render->body_length == 20);
  CHECK(render->depends == (kOnStates | kOnRegistry | kOnConfig));
}

TEST_CASE("relief_request: anything unusual is relayed as it is") {
  for (const std::string& text : {
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "Range: bytes=0-9\r\n\r\n",
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "If-None-Match: \"x\"\r\n\r\n",
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "Cache-Control: no-cache\r\n\r\n",
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "X-Custom: 1\r\n\r\n",
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "Accept: a\r\nAccept: b\r\n\r\n",
           "GET /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "Content-Length: 2\r\n\r\n",
           "HEAD /api/states HTTP/1.1\r\nHost: h\r\n" + kAuth + "\r\n",
           "POST /api/services/light/turn_on HTTP/1.1\r\nHost: h\r\n" + kAuth +
               "Content-Length: 2\r\n\r\n",
           "POST /api/template HTTP/1.1\r\nHost: h\r\n" + kAuth +
               "Transfer-Encoding: chunked\r\n\r\n",
           "POST /api/template HTTP/1.1\r\nHost: h\r\n" + kAuth + "Content-Length: 0\r\n\r\n",
           "POST /api/template HTTP/1.1\r\nHost: h\r\n" + kAuth + "Content-Length: 65537\r\n\r\n",
           "POST /api/template HTTP/1.1\r\nHost: h\r\n" + kAuth +
               "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
       }) {
    INFO(text);
    CHECK_FALSE(identity(text));
  }
}

TEST_CASE("is_relief_write: anything but GET, HEAD and the template render") {
  CHECK_FALSE(is_relief_write(http::verb::get, "/api/states"));
  CHECK_FALSE(is_relief_write(http::verb::head, "/api/states"));
  CHECK_FALSE(is_relief_write(http::verb::post, "/api/template"));
  CHECK(is_relief_write(http::verb::post, "/api/services/light/turn_on"));
  CHECK(is_relief_write(http::verb::post, "/api/config/core/update"));
  CHECK(is_relief_write(http::verb::delete_, "/api/config/automation/config/1"));
  CHECK(is_relief_write(http::verb::options, "/api/states"));
}
