#include "ha_bridge/detail/http_head.hpp"

#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>

#include "common/text.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

// Whether a field's value lies in `input` on the same line as its name, as an unfolded value
// does. Beast unfolds an obs-fold into a scratch buffer of its own (outside `input`), except
// when the first line is empty ("Name:\r\n value"): then the value is the continuation line's
// bytes, inside `input` but after a line break.
bool value_on_its_line(BeastView name, BeastView value, std::string_view input) {
  const char* first = input.data();
  const char* last = first + input.size();
  const char* after_colon = name.data() + name.size() + 1;
  if (value.data() < after_colon || value.data() > last ||
      value.size() > static_cast<std::size_t>(last - value.data())) {
    return false;
  }
  for (const char* p = after_colon; p < value.data(); ++p) {
    if (*p != ' ' && *p != '\t') return false;
  }
  return true;
}

}  // namespace

std::string_view ParsedHead::get(http::field name) const {
  for (const auto& f : *fields) {
    if (f.name == name) return f.value;
  }
  return {};
}

template <bool isRequest>
HeadParser<isRequest>::HeadParser(std::vector<HeaderField>& field_storage,
                                  std::vector<std::string_view>& body_storage) {
  field_storage.clear();
  body_storage.clear();
  fields = &field_storage;
  body = &body_storage;
}

template <bool isRequest>
void HeadParser<isRequest>::on_field_impl(http::field name, BeastView name_string, BeastView value,
                                          boost::beast::error_code& ec) {
  // Trailer fields of a chunked body are not forwarded: bodies are re-framed and the trailer
  // section dropped, as before.
  if (in_trailer) return;
  if (!value_on_its_line(name_string, value, input)) {
    ec = http::error::bad_value;  // an obs-fold value (see value_on_its_line)
    return;
  }
  fields->push_back(HeaderField{name, name_string, value});
}

template <bool isRequest>
std::size_t HeadParser<isRequest>::on_body_impl(BeastView piece, boost::beast::error_code&) {
  if (!piece.empty()) body->push_back(piece);
  return piece.size();
}

template <bool isRequest>
void HeadParser<isRequest>::on_chunk_header_impl(std::uint64_t size, BeastView,
                                                 boost::beast::error_code&) {
  if (size == 0) in_trailer = true;
}

template <bool isRequest>
std::size_t HeadParser<isRequest>::on_chunk_body_impl(std::uint64_t, BeastView piece,
                                                      boost::beast::error_code& ec) {
  return on_body_impl(piece, ec);
}

template class HeadParser<true>;
template class HeadParser<false>;

void RequestHead::on_request_impl(http::verb verb, BeastView method_str, BeastView request_target,
                                  int request_version, boost::beast::error_code&) {
  method = verb;
  method_string = method_str;
  target = request_target;
  version = request_version;
}

void ResponseHead::on_response_impl(int code, BeastView reason_phrase, int response_version,
                                    boost::beast::error_code&) {
  status = static_cast<unsigned>(code);
  reason = reason_phrase;
  version = response_version;
}

std::size_t find_head_end(std::string_view bytes, std::size_t& scanned) {
  constexpr std::string_view kEnd = "\r\n\r\n";
  const std::size_t at = bytes.find(kEnd, scanned);
  if (at == std::string_view::npos) {
    // The end may straddle what is here and what comes next: look again from three bytes back.
    scanned = bytes.size() > 3 ? bytes.size() - 3 : 0;
    return std::string_view::npos;
  }
  return at + kEnd.size();
}

bool is_acceptable_request(const RequestHead& head) {
  for (const char c : head.target) {
    if (c <= ' ' || c > '~') return false;  // (char is signed: bytes over 0x7F are negative)
  }
  int hosts = 0;
  int codings = 0;
  for (const auto& f : *head.fields) {
    if (f.name == http::field::host) {
      ++hosts;
    } else if (f.name == http::field::transfer_encoding) {
      ++codings;
      if (!text::iequals(f.value, "chunked")) return false;
    }
  }
  return codings <= 1 && (hosts == 1 || (hosts == 0 && head.version < 11));
}

ConnectionOptions::ConnectionOptions(const std::vector<HeaderField>& fields) : fields_(&fields) {
  for (const auto& f : fields) {
    if (f.name != http::field::connection) continue;
    for (const auto& option : http::token_list{f.value}) {
      if (!text::iequals(option, "close") && !text::iequals(option, "keep-alive")) any_ = true;
    }
  }
}

bool ConnectionOptions::names(const HeaderField& field) const {
  if (!any_) return false;
  for (const auto& f : *fields_) {
    if (f.name != http::field::connection) continue;
    if (http::token_list{f.value}.exists(field.name_string)) return true;
  }
  return false;
}

bool is_client_identity_field(const HeaderField& field) {
  if (field.name == http::field::cookie || field.name == http::field::forwarded) return true;
  if (field.name != http::field::unknown) return false;  // the others have no enum of Beast's
  const std::string_view name = field.name_string;
  return text::istarts_with(name, "x-forwarded-") || text::istarts_with(name, "x-hass-") ||
         text::iequals(name, "x-real-ip") || text::iequals(name, "x-supervisor-token") ||
         text::iequals(name, "x-ingress-path");
}

bool is_hop_by_hop(const HeaderField& field) {
  switch (field.name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    case http::field::unknown:
      // RFC 2616 §13.5.1 spells the trailer field "Trailers"; the legacy agent removed that.
      return text::iequals(field.name_string, "trailers");
    default:
      return false;
  }
}

void append_framing(std::string& out, const Framing& framing) {
  switch (framing.kind) {
    case Framing::Kind::none:
      return;
    case Framing::Kind::length: {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, framing.length).ptr;
      out.append("Content-Length: ").append(digits, end).append("\r\n");
      return;
    }
    case Framing::Kind::chunked:
      out.append("Transfer-Encoding: chunked\r\n");
      return;
  }
}

void append_status_line(std::string& out, unsigned status, std::string_view upstream_reason) {
  // Always three digits, as the grammar wants (a parsed status is 000-999).
  const char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                          static_cast<char>('0' + status / 10 % 10),
                          static_cast<char>('0' + status % 10)};
  std::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
  if (reason == "<unknown-status>") reason = upstream_reason;
  out.append("HTTP/1.1 ").append(digits, sizeof digits).append(" ").append(reason).append("\r\n");
}

void append_connection(std::string& out, bool keep_alive, int client_version) {
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (client_version < 11) {
    out.append("Connection: keep-alive\r\n");
  }
}

void write_request_head(std::string& out, std::string_view method,
                        std::initializer_list<std::string_view> target_parts,
                        const std::vector<HeaderField>& fields, std::string_view fixed_fields,
                        const Framing& framing) {
  out.clear();
  out.append(method).append(" ");
  for (auto part : target_parts) out.append(part);
  out.append(" HTTP/1.1\r\n");
  append_fields(out, fields, [](const HeaderField& f) {
    return f.name == http::field::host || f.name == http::field::authorization ||
           f.name == http::field::content_length || f.name == http::field::expect ||
           is_client_identity_field(f);
  });
  out.append(fixed_fields);
  append_framing(out, framing);
  out.append("\r\n");
}

void append_response_fields(std::string& out, const std::vector<HeaderField>& fields) {
  append_fields(out, fields,
                [](const HeaderField& f) { return f.name == http::field::content_length; });
}

void write_response_head(std::string& out, unsigned status, std::string_view upstream_reason,
                         const std::vector<HeaderField>& fields, const Framing& framing,
                         bool keep_alive, int client_version) {
  out.clear();
  append_status_line(out, status, upstream_reason);
  append_response_fields(out, fields);
  append_framing(out, framing);
  append_connection(out, keep_alive, client_version);
  out.append("\r\n");
}

void write_response_head(std::string& out, unsigned status, std::string_view upstream_reason,
                         std::string_view rendered_fields, const Framing& framing, bool keep_alive,
                         int client_version) {
  out.clear();
  append_status_line(out, status, upstream_reason);
  out.append(rendered_fields);
  append_framing(out, framing);
  append_connection(out, keep_alive, client_version);
  out.append("\r\n");
}

std::string_view chunk_size_line(std::uint64_t size, char (&out)[18]) {
  const auto end = std::to_chars(out, out + 16, size, 16).ptr;
  end[0] = '\r';
  end[1] = '\n';
  return {out, static_cast<std::size_t>(end + 2 - out)};
}

}  // namespace dinodia::ha_bridge::detail
