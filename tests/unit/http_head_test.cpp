// The relay's lean HTTP heads (ha_bridge/detail/http_head): Beast's parser does the parsing, the
// heads keep views; and the head-writing helpers the relay sends with.
#include "ha_bridge/detail/http_head.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using dinodia::ha_bridge::detail::append_connection;
using dinodia::ha_bridge::detail::append_fields;
using dinodia::ha_bridge::detail::append_framing;
using dinodia::ha_bridge::detail::append_status_line;
using dinodia::ha_bridge::detail::chunk_size_line;
using dinodia::ha_bridge::detail::ConnectionOptions;
using dinodia::ha_bridge::detail::Framing;
using dinodia::ha_bridge::detail::HeaderField;
using dinodia::ha_bridge::detail::is_acceptable_request;
using dinodia::ha_bridge::detail::is_client_identity_field;
using dinodia::ha_bridge::detail::is_hop_by_hop;
using dinodia::ha_bridge::detail::parse_head;
using dinodia::ha_bridge::detail::RequestHead;
using dinodia::ha_bridge::detail::ResponseHead;

namespace {

struct Storage {
  std::vector<HeaderField> fields;
  std::vector<std::string_view> body;
};

std::string joined(const std::vector<std::string_view>& pieces) {
  std::string out;
  for (auto p : pieces) out.append(p);
  return out;
}

// Feeds `bytes` to the parser as a client would send them: all at once, then the body put by put
// (eager), collecting every body piece. Returns the error of the last put.
template <class Head>
boost::beast::error_code feed(Head& head, std::string_view bytes, std::string& body_out) {
  boost::beast::error_code ec;
  std::size_t used = parse_head(head, bytes, ec);
  if (ec) return ec;
  bytes.remove_prefix(used);
  head.eager(true);
  while (!head.is_done() && !bytes.empty()) {
    head.body->clear();
    used = head.put(asio::buffer(bytes.data(), bytes.size()), ec);
    body_out += joined(*head.body);
    if (ec) return ec;
    bytes.remove_prefix(used);
  }
  return ec;
}

}  // namespace

TEST_CASE("RequestHead: request line and fields as views, in order, names as sent") {
  Storage s;
  RequestHead head(s.fields, s.body);
  const std::string bytes =
      "POST /api/template?x=1 HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer t0k\r\n"
      "X-Custom: a b\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  boost::beast::error_code ec;
  const std::size_t used = parse_head(head, bytes, ec);
  REQUIRE_FALSE(ec);
  CHECK(used == bytes.size() - 2);  // the head only; the body is left for the next put
  CHECK(head.method == http::verb::post);
  CHECK(head.method_string == "POST");
  CHECK(head.target == "/api/template?x=1");
  CHECK(head.version == 11);
  REQUIRE(s.fields.size() == 5);
  CHECK(s.fields[2].name == http::field::unknown);
  CHECK(s.fields[2].name_string == "X-Custom");
  CHECK(s.fields[2].value == "a b");
  CHECK(s.fields[3].name == http::field::content_type);
  CHECK(s.fields[3].name_string == "content-type");
  CHECK(head.get(http::field::authorization) == "Bearer t0k");
  CHECK(head.get(http::field::expect).empty());
  CHECK(head.content_length().value() == 2);
  CHECK(head.keep_alive());
  // The views point into the parsed bytes, not into copies.
  CHECK(head.target.data() >= bytes.data());
  CHECK(head.target.data() < bytes.data() + bytes.size());
}

TEST_CASE("find_head_end: the end of a head that trickles in, without searching it all again") {
  using dinodia::ha_bridge::detail::find_head_end;
  constexpr auto npos = std::string_view::npos;
  std::size_t scanned = 0;
  std::string bytes = "GET /api/ HTTP/1.1\r\nHost: x\r";
  CHECK(find_head_end(bytes, scanned) == npos);
  CHECK(scanned == bytes.size() - 3);  // the end could begin in the last three bytes
  bytes += "\n\r";
  CHECK(find_head_end(bytes, scanned) == npos);
  bytes += "\nbody";
  CHECK(find_head_end(bytes, scanned) == bytes.size() - 4);
  std::size_t fresh = 0;
  CHECK(find_head_end("ab", fresh) == npos);
  CHECK(fresh == 0);
  CHECK(find_head_end("\n\n", fresh) == npos);  // Beast's parser wants CRLF CRLF, and so do we
}

TEST_CASE("RequestHead: Beast hands out lines as they complete, so a head is parsed whole") {
  // Why the relay waits for find_head_end before it parses: given part of a head, Beast's
  // parser already consumes (and reports) the request line, and the views it gave would point
  // into bytes the caller is then expected to drop.
  Storage s;
  RequestHead head(s.fields, s.body);
  const std::string part = "GET /api/ HTTP/1.1\r\nHost: x\r\n";
  boost::beast::error_code ec;
  CHECK(parse_head(head, part, ec) > 0);
  CHECK(ec == http::error::need_more);

  Storage whole_storage;
  RequestHead whole(whole_storage.fields, whole_storage.body);
  const std::string all = part + "Authorization: Bearer a\r\n\r\n";
  CHECK(parse_head(whole, all, ec) == all.size());
  CHECK_FALSE(ec);
  CHECK(whole.target == "/api/");
  CHECK(whole_storage.fields.size() == 2);
  CHECK(whole.is_done());  // no body
}

TEST_CASE("RequestHead: chunked bodies arrive decoded, trailer fields are dropped") {
  Storage s;
  RequestHead head(s.fields, s.body);
  std::string body;
  const auto ec = feed(head,
                       "POST /api/services/a/b HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                       body);
  CHECK_FALSE(ec);
  CHECK(head.is_done());
  CHECK(head.chunked());
  CHECK(body == "hello world");
  REQUIRE(s.fields.size() == 2);  // Host, Transfer-Encoding: the trailer is not a field
  CHECK(head.get(http::field::transfer_encoding) == "chunked");
}

TEST_CASE("RequestHead: the limits and the framing checks of Beast's parser hold") {
  SECTION("a head over the header limit") {
    Storage s;
    RequestHead head(s.fields, s.body);
    head.header_limit(64);
    const std::string bytes = "GET /api/ HTTP/1.1\r\nX-Big: " + std::string(100, 'a') + "\r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK(ec == http::error::header_limit);
  }
  SECTION("a declared length over the body limit, before any body byte") {
    Storage s;
    RequestHead head(s.fields, s.body);
    head.body_limit(10);
    const std::string bytes = "POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK(ec == http::error::body_limit);
  }
  SECTION("a chunked body over the body limit") {
    Storage s;
    RequestHead head(s.fields, s.body);
    head.body_limit(8);
    std::string body;
    const auto ec = feed(
        head, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n",
        body);
    CHECK(ec == http::error::body_limit);
  }
  SECTION("both Content-Length and Transfer-Encoding") {
    Storage s;
    RequestHead head(s.fields, s.body);
    const std::string bytes =
        "POST /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK(ec == http::error::bad_transfer_encoding);
  }
  SECTION("bad chunk syntax") {
    Storage s;
    RequestHead head(s.fields, s.body);
    std::string body;
    const auto ec =
        feed(head, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", body);
    CHECK(ec);
    CHECK(ec != http::error::need_more);
  }
}

TEST_CASE("ResponseHead: status, reason, keep-alive and a body delimited by the connection's end") {
  Storage s;
  ResponseHead head(s.fields, s.body);
  const std::string bytes = "HTTP/1.1 418 I'm a teapot\r\nContent-Type: text/plain\r\n\r\nshort";
  std::string body;
  auto ec = feed(head, bytes, body);
  CHECK_FALSE(ec);
  CHECK(head.status == 418);
  CHECK(head.reason == "I'm a teapot");
  CHECK(head.need_eof());
  CHECK_FALSE(head.keep_alive());  // the end of the body is the end of the connection
  CHECK(body == "short");
  CHECK_FALSE(head.is_done());
  head.put_eof(ec);
  CHECK_FALSE(ec);
  CHECK(head.is_done());
}

TEST_CASE("ResponseHead: a chunked answer split across reads, pieces in order") {
  Storage s;
  ResponseHead head(s.fields, s.body);
  const std::string all =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
  std::string body;
  // Byte by byte, the way a slow upstream could deliver it.
  std::string pending;
  boost::beast::error_code ec;
  bool head_done = false;
  for (char c : all) {
    pending.push_back(c);
    if (head_done) head.body->clear();
    const std::size_t used = parse_head(head, pending, ec);
    if (ec == http::error::need_more) {
      ec = {};
      continue;
    }
    REQUIRE_FALSE(ec);
    if (head_done) body += joined(*head.body);
    if (head.is_header_done()) head_done = true;
    pending.erase(0, used);
  }
  CHECK(head.is_done());
  CHECK(head.keep_alive());
  CHECK(body == "abcdefg");
}

TEST_CASE("a field folded over two lines (obs-fold) is refused, request or response") {
  // Beast unfolds such a value into a scratch buffer that is gone after the parse: keeping a
  // view of it would forward whatever the stack held later. RFC 7230 §3.2.4 allows refusing it.
  SECTION("request") {
    Storage s;
    RequestHead head(s.fields, s.body);
    const std::string bytes = "GET /api/ HTTP/1.1\r\nX-Folded: first\r\n second\r\nHost: x\r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK(ec == http::error::bad_value);
  }
  SECTION("response") {
    Storage s;
    ResponseHead head(s.fields, s.body);
    const std::string bytes = "HTTP/1.1 200 OK\r\nX-Folded: a\r\n\tb\r\nContent-Length: 0\r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK(ec == http::error::bad_value);
  }
  SECTION("a fold after an empty first line is refused too (Beast keeps it in the input)") {
    for (const std::string bytes : {"GET /api/ HTTP/1.1\r\nAuthorization:\r\n Bearer t\r\n\r\n",
                                    "GET /api/ HTTP/1.1\r\nX-A: \r\n\tb\r\n\r\n",
                                    "GET /api/ HTTP/1.1\r\nX-A:\r\n \r\nX-B: c\r\n\r\n"}) {
      INFO(bytes);
      Storage s;
      RequestHead head(s.fields, s.body);
      boost::beast::error_code ec;
      parse_head(head, bytes, ec);
      CHECK(ec == http::error::bad_value);
    }
  }
  SECTION("an empty value and spaces around a value are not folds") {
    Storage s;
    RequestHead head(s.fields, s.body);
    const std::string bytes = "GET /api/ HTTP/1.1\r\nX-Empty:\r\nX-Spaced:   v   \r\n\r\n";
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    CHECK_FALSE(ec);
    REQUIRE(s.fields.size() == 2);
    CHECK(s.fields[0].value.empty());
    CHECK(s.fields[1].value == "v");
  }
}

TEST_CASE("is_hop_by_hop: the connection-level fields, whatever their case") {
  auto field = [](http::field name, std::string_view text) { return HeaderField{name, text, "v"}; };
  CHECK(is_hop_by_hop(field(http::field::connection, "connection")));
  CHECK(is_hop_by_hop(field(http::field::keep_alive, "Keep-Alive")));
  CHECK(is_hop_by_hop(field(http::field::proxy_authenticate, "Proxy-Authenticate")));
  CHECK(is_hop_by_hop(field(http::field::proxy_authorization, "Proxy-Authorization")));
  CHECK(is_hop_by_hop(field(http::field::te, "TE")));
  CHECK(is_hop_by_hop(field(http::field::trailer, "Trailer")));
  CHECK(is_hop_by_hop(field(http::field::transfer_encoding, "Transfer-Encoding")));
  CHECK(is_hop_by_hop(field(http::field::upgrade, "Upgrade")));
  CHECK(is_hop_by_hop(field(http::field::unknown, "TRAILERS")));
  CHECK_FALSE(is_hop_by_hop(field(http::field::content_type, "Content-Type")));
  CHECK_FALSE(is_hop_by_hop(field(http::field::authorization, "Authorization")));
  CHECK_FALSE(is_hop_by_hop(field(http::field::unknown, "X-Trailers-Count")));
}

TEST_CASE("writing heads: fields without hop-by-hop ones, framing, status and connection") {
  const std::vector<HeaderField> fields = {
      {http::field::host, "Host", "hub"},
      {http::field::connection, "Connection", "keep-alive, X-Foo"},
      {http::field::content_type, "Content-Type", "application/json"},
      {http::field::transfer_encoding, "Transfer-Encoding", "chunked"},
      {http::field::unknown, "X-Request-Id", "42"},
  };
  std::string out;
  append_fields(out, fields, [](const HeaderField& f) { return f.name == http::field::host; });
  CHECK(out == "Content-Type: application/json\r\nX-Request-Id: 42\r\n");

  out.clear();
  append_framing(out, Framing{Framing::Kind::length, 262144});
  append_framing(out, Framing{Framing::Kind::chunked, 0});
  append_framing(out, Framing{Framing::Kind::none, 7});
  CHECK(out == "Content-Length: 262144\r\nTransfer-Encoding: chunked\r\n");

  out.clear();
  append_status_line(out, 200, "Whatever");
  append_status_line(out, 502, "");
  append_status_line(out, 299, "Custom Reason");  // no standard phrase: the upstream's
  CHECK(out == "HTTP/1.1 200 OK\r\nHTTP/1.1 502 Bad Gateway\r\nHTTP/1.1 299 Custom Reason\r\n");
  out.clear();
  append_status_line(out, 42, "Odd");  // three digits, as the grammar wants
  CHECK(out == "HTTP/1.1 042 Odd\r\n");

  out.clear();
  append_connection(out, true, 11);
  CHECK(out.empty());
  append_connection(out, true, 10);
  CHECK(out == "Connection: keep-alive\r\n");
  out.clear();
  append_connection(out, false, 11);
  CHECK(out == "Connection: close\r\n");
}

TEST_CASE("chunk_size_line: lowercase hex and CRLF") {
  char line[18];
  CHECK(chunk_size_line(0, line) == "0\r\n");
  CHECK(chunk_size_line(255, line) == "ff\r\n");
  CHECK(chunk_size_line(65536, line) == "10000\r\n");
  CHECK(chunk_size_line(0xffffffffffffffffULL, line) == "ffffffffffffffff\r\n");
}

TEST_CASE("is_acceptable_request: one Host, a printable ASCII target, only plain chunked") {
  auto acceptable = [](const std::string& bytes) {
    Storage s;
    RequestHead head(s.fields, s.body);
    boost::beast::error_code ec;
    parse_head(head, bytes, ec);
    REQUIRE((!ec || ec == http::error::need_more));
    return is_acceptable_request(head);
  };
  CHECK(acceptable("GET /api/states?x=1 HTTP/1.1\r\nHost: hub\r\n\r\n"));
  CHECK(acceptable("GET /api/ HTTP/1.0\r\n\r\n"));  // HTTP/1.0 may leave Host out
  CHECK(acceptable("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"));
  CHECK_FALSE(acceptable("GET /api/ HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(acceptable("GET /api/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"));
  CHECK_FALSE(acceptable("GET /api/ HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"));
  CHECK_FALSE(acceptable("GET /caf\xC3\xA9 HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK_FALSE(acceptable("GET /a?\xFF HTTP/1.1\r\nHost: h\r\n\r\n"));
  for (const char* coding : {"chunked, identity", "xchunked", "identity", "gzip, chunked"}) {
    INFO(coding);
    CHECK_FALSE(acceptable(std::string("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ") +
                           coding + "\r\n\r\n"));
  }
}

TEST_CASE("fields named in Connection and client identity fields are not written") {
  const std::vector<HeaderField> fields = {
      {http::field::connection, "Connection", "keep-alive, X-Hop"},
      {http::field::connection, "Connection", "x-other"},
      {http::field::unknown, "x-hop", "1"},
      {http::field::unknown, "X-Other", "2"},
      {http::field::unknown, "X-Kept", "3"},
  };
  const ConnectionOptions options(fields);
  CHECK(options.names(fields[2]));
  CHECK(options.names(fields[3]));
  CHECK_FALSE(options.names(fields[4]));
  std::string out;
  append_fields(out, fields, [](const HeaderField&) { return false; });
  CHECK(out == "X-Kept: 3\r\n");

  const std::vector<HeaderField> plain = {{http::field::connection, "Connection", "keep-alive"},
                                          {http::field::unknown, "keep-alive-ish", "1"}};
  CHECK_FALSE(ConnectionOptions(plain).names(plain[1]));

  auto identity = [](http::field name, std::string_view text) {
    return is_client_identity_field(HeaderField{name, text, "v"});
  };
  CHECK(identity(http::field::cookie, "cookie"));
  CHECK(identity(http::field::forwarded, "Forwarded"));
  CHECK(identity(http::field::unknown, "X-Forwarded-For"));
  CHECK(identity(http::field::unknown, "x-forwarded-proto"));
  CHECK(identity(http::field::unknown, "X-HASS-USER-ID"));
  CHECK(identity(http::field::unknown, "X-Hass-Is-Admin"));
  CHECK(identity(http::field::unknown, "X-Supervisor-Token"));
  CHECK(identity(http::field::unknown, "X-Real-IP"));
  CHECK(identity(http::field::unknown, "X-Ingress-Path"));
  CHECK_FALSE(identity(http::field::authorization, "Authorization"));
  CHECK_FALSE(identity(http::field::content_type, "Content-Type"));
  CHECK_FALSE(identity(http::field::user_agent, "User-Agent"));
  CHECK_FALSE(identity(http::field::unknown, "X-Forwarded"));
  CHECK_FALSE(identity(http::field::unknown, "X-Custom"));
}
