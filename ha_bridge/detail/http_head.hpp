#pragma once
// Internal to ha_bridge: the relay's HTTP/1.1 message heads.
//
// Beast's basic_parser does all the parsing (limits, framing, Content-Length/Transfer-Encoding
// conflicts, chunk syntax). These subclasses keep only what the relay needs, as views into the
// bytes being parsed instead of a field container with an allocation per field, and the relay
// writes the heads it sends itself (plain appends to a reused string) instead of through Beast's
// serializer. Both were most of the relay's user-space time on a small request.
//
// Views stay valid while the parsed bytes stay where they are: until the ReadBuffer they were
// read into is asked for more room. Beast's parser delivers the request line and the fields as
// soon as each line is complete, so a head must be given to it whole, in one put(): the caller
// first waits for the end of the head (find_head_end), then parses.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dinodia::ha_bridge::detail {

namespace http = boost::beast::http;
// The string view type of Beast's parser callbacks (boost::core::string_view in Boost 1.81).
using BeastView = boost::beast::string_view;

struct HeaderField {
  http::field name = http::field::unknown;  // Beast's enum for known names
  std::string_view name_string;             // as received
  std::string_view value;
};

// What a head holds, request or response. `fields` and `body` are storage the connection owns
// and reuses (cleared, never shrunk), so a parse allocates nothing once they have grown.
struct ParsedHead {
  std::vector<HeaderField>* fields = nullptr;
  // Body bytes found by the last put() (chunk framing already removed), in order.
  std::vector<std::string_view>* body = nullptr;
  bool in_trailer = false;
  // The bytes a head is being parsed from (set by parse_head): every field value must lie in them.
  std::string_view input;

  // The first value of a field, or empty.
  std::string_view get(http::field name) const;
};

// What both heads do with Beast's callbacks: fields and body pieces kept as views, the chunked
// trailer dropped. Instantiated for requests and responses in http_head.cpp.
template <bool isRequest>
class HeadParser : public http::basic_parser<isRequest>, public ParsedHead {
 protected:
  HeadParser(std::vector<HeaderField>& field_storage, std::vector<std::string_view>& body_storage);

 private:
  void on_field_impl(http::field name, BeastView name_string, BeastView value,
                     boost::beast::error_code& ec) override;
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::beast::error_code&) override {}
  std::size_t on_body_impl(BeastView body, boost::beast::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, BeastView, boost::beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t, BeastView body,
                                 boost::beast::error_code& ec) override;
  void on_finish_impl(boost::beast::error_code&) override {}
};
extern template class HeadParser<true>;
extern template class HeadParser<false>;

class RequestHead final : public HeadParser<true> {
 public:
  RequestHead(std::vector<HeaderField>& field_storage, std::vector<std::string_view>& body_storage)
      : HeadParser(field_storage, body_storage) {}

  http::verb method = http::verb::unknown;
  std::string_view method_string;
  std::string_view target;
  int version = 11;

 private:
  void on_request_impl(http::verb method, BeastView method_str, BeastView target, int version,
                       boost::beast::error_code& ec) override;
  void on_response_impl(int, BeastView, int, boost::beast::error_code&) override {}
};

class ResponseHead final : public HeadParser<false> {
 public:
  ResponseHead(std::vector<HeaderField>& field_storage, std::vector<std::string_view>& body_storage)
      : HeadParser(field_storage, body_storage) {}

  unsigned status = 0;
  std::string_view reason;
  int version = 11;

 private:
  void on_request_impl(http::verb, BeastView, BeastView, int, boost::beast::error_code&) override {}
  void on_response_impl(int code, BeastView reason, int version,
                        boost::beast::error_code& ec) override;
};

// Parses a whole head (see find_head_end) held in `bytes`; returns what put() consumed. A field
// folded over several lines (obs-fold) is refused with http::error::bad_value: Beast hands its
// unfolded value out of a scratch buffer of its own that does not outlive the parse, so it could
// not be kept as a view, and RFC 7230 §3.2.4 lets a server (400) and a proxy (502) refuse it.
// A fold after an empty first line ("Authorization:\r\n Bearer ...") is refused as well, though
// Beast then hands the next line's bytes out of the input (docs/http-input.md).
template <class Head>
std::size_t parse_head(Head& head, std::string_view bytes, boost::beast::error_code& ec) {
  head.input = bytes;
  const std::size_t used = head.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  head.input = {};
  return used;
}

// The length of the head at the start of `bytes` (its final "\r\n\r\n" included, as Beast's
// parser requires), or npos while it is incomplete. `scanned` carries how far earlier calls
// looked (start at 0), so a head that trickles in is not searched from its start again.
std::size_t find_head_end(std::string_view bytes, std::size_t& scanned);

// Whether a request may be served at all, beyond what Beast's parser checks
// (docs/http-input.md): one Host field (none only from an HTTP/1.0 client), a target of
// printable ASCII only, and a Transfer-Encoding, if any, that is exactly one "chunked" (any
// other coding would leave the body to be read as the next request, RFC 9112 §6.3).
bool is_acceptable_request(const RequestHead& head);

// Connection-level fields (RFC 7230 §6.1) that a proxy must not forward.
bool is_hop_by_hop(const HeaderField& field);

// The fields a message's Connection fields name (RFC 9110 §7.6.1): connection options, not
// forwarded either. Looks at the Connection fields once; `names` is then cheap for the common
// "Connection: keep-alive" or none.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const std::vector<HeaderField>& fields);
  bool names(const HeaderField& field) const;

 private:
  const std::vector<HeaderField>* fields_;
  bool any_ = false;  // a Connection field names something besides close and keep-alive
};

// Identity and forwarding fields a LAN client must not pass on to Home Assistant, which would
// take them from the Supervisor as its own (docs/http-input.md): Cookie, Forwarded,
// X-Forwarded-*, X-Real-IP, X-Supervisor-Token, X-Hass-*, X-Ingress-Path. The apps send none.
bool is_client_identity_field(const HeaderField& field);

// How the body of a message we send is delimited.
struct Framing {
  enum class Kind { none, length, chunked } kind = Kind::none;
  std::uint64_t length = 0;
};

// Appends "Name: value\r\n" for every field that is neither hop-by-hop nor named in a
// Connection field, and for which `skip(field)` is false.
template <class Skip>
void append_fields(std::string& out, const std::vector<HeaderField>& fields, Skip skip) {
  const ConnectionOptions options(fields);
  for (const auto& f : fields) {
    if (is_hop_by_hop(f) || options.names(f) || skip(f)) continue;
    out.append(f.name_string).append(": ").append(f.value).append("\r\n");
  }
}
void append_framing(std::string& out, const Framing& framing);

// The status line our answers carry: the standard reason phrase, or the upstream's for a code
// without one.
void append_status_line(std::string& out, unsigned status, std::string_view upstream_reason);

// "Connection: close" / "Connection: keep-alive" as the client's version needs (nothing for a
// kept-alive HTTP/1.1 connection).
void append_connection(std::string& out, bool keep_alive, int client_version);

// The head of a request the relay sends to Home Assistant: `method`, the target spelled by
// `target_parts` (prefix, "/core", normalised path, query), the client's end-to-end fields
// without Host, Authorization, Content-Length, Expect and identity fields, then `fixed_fields`
// (Host and the Supervisor's Authorization, each line ending in CRLF) and the framing of the body
// to follow.
void write_request_head(std::string& out, std::string_view method,
                        std::initializer_list<std::string_view> target_parts,
                        const std::vector<HeaderField>& fields, std::string_view fixed_fields,
                        const Framing& framing);

// The head of an answer the relay sends to a client: the status line, the upstream's end-to-end
// fields without Content-Length (append_response_fields), the framing of the body to follow and
// the Connection field the client's version needs.
void write_response_head(std::string& out, unsigned status, std::string_view upstream_reason,
                         const std::vector<HeaderField>& fields, const Framing& framing,
                         bool keep_alive, int client_version);
// The same head with the fields already rendered by append_response_fields (an answer the
// kiosk-load relief holds), so that it is byte for byte the head the relay would write.
void write_response_head(std::string& out, unsigned status, std::string_view upstream_reason,
                         std::string_view rendered_fields, const Framing& framing, bool keep_alive,
                         int client_version);
// The upstream answer's end-to-end fields as a relayed answer carries them.
void append_response_fields(std::string& out, const std::vector<HeaderField>& fields);

// A chunk's size line, "<hex>\r\n", into `out` (which must hold 18 bytes).
std::string_view chunk_size_line(std::uint64_t size, char (&out)[18]);

}  // namespace dinodia::ha_bridge::detail
