// Fuzzes the relay's lean HTTP heads (ha_bridge/detail/http_head) against Beast's own parser,
// and the heads the relay writes from them. Input: one byte of mode, then the bytes a peer sends.
// Mode bit 7 picks a response (from Home Assistant) over a request (from a client); bits 0-6
// split the bytes into two reads, as they might arrive.
//
// Invariants:
// - find_head_end finds the same end whether the bytes come in one read or two;
// - RequestHead/ResponseHead accept exactly what Beast's request_parser/response_parser accept
//   (an obs-fold value aside, which ours refuse), consume as much, and keep the same start line
//   and fields (each name's in the same order) as views into the input;
// - the head the relay writes upstream (or to the client) is itself a valid head that parses
//   back to the same method/status and end-to-end fields, with the relay's own Host and
//   Authorization, no hop-by-hop field, no field a Connection field names, no client identity
//   field, and the framing it announced.
#include <algorithm>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "ha_bridge/detail/http_head.hpp"

namespace {

namespace http = boost::beast::http;
using dinodia::ha_bridge::detail::ConnectionOptions;
using dinodia::ha_bridge::detail::find_head_end;
using dinodia::ha_bridge::detail::Framing;
using dinodia::ha_bridge::detail::HeaderField;
using dinodia::ha_bridge::detail::is_client_identity_field;
using dinodia::ha_bridge::detail::is_hop_by_hop;
using dinodia::ha_bridge::detail::parse_head;
using dinodia::ha_bridge::detail::RequestHead;
using dinodia::ha_bridge::detail::ResponseHead;
using dinodia::ha_bridge::detail::write_request_head;
using dinodia::ha_bridge::detail::write_response_head;

constexpr std::uint32_t kHeaderLimit = 32 * 1024;
constexpr std::string_view kFixed = "Host: supervisor\r\nAuthorization: Bearer s3cret\r\n";

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool has_fold(std::string_view head) {
  for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;
       at = head.find("\r\n", at + 2)) {
    if (at + 2 < head.size() && (head[at + 2] == ' ' || head[at + 2] == '\t')) return true;
  }
  return false;
}

// Fields as (lowercased name, name as sent, value), grouped by name with each name's fields in
// their order: how Beast's basic_fields keeps them (a field goes after the last one of its
// name), while the relay keeps and forwards them in the order they came.
using FieldList = std::vector<std::tuple<std::string, std::string, std::string>>;

FieldList grouped(FieldList list) {
  std::stable_sort(list.begin(), list.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  return list;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

template <class Fields>
FieldList list_of(const Fields& fields) {
  FieldList out;
  for (const auto& f : fields) {
    out.emplace_back(lower(f.name_string()), std::string(f.name_string()), std::string(f.value()));
  }
  return out;
}

FieldList list_of(const std::vector<HeaderField>& fields) {
  FieldList out;
  for (const auto& f : fields) {
    out.emplace_back(lower(f.name_string), std::string(f.name_string), std::string(f.value));
  }
  return out;
}

// Our fields against the reference message's.
template <class Fields>
void check_same_fields(const std::vector<HeaderField>& ours, const Fields& reference,
                       std::string_view input) {
  for (const auto& f : ours) {
    FUZZ_CHECK(inside(f.name_string, input) && inside(f.value, input), "views into the input");
    FUZZ_CHECK(f.name == http::string_to_field(f.name_string), "the field's enum");
  }
  FUZZ_CHECK(grouped(list_of(ours)) == grouped(list_of(reference)),
             "the same fields as Beast's parser, each name's in the same order");
}

// What a written head must hold: the `kept` end-to-end fields and then `tail`, the relay's own.
template <class Message>
void check_written_fields(const Message& written, const std::vector<HeaderField>& kept,
                          const std::vector<std::pair<std::string, std::string>>& tail) {
  FieldList expected = list_of(kept);
  for (const auto& [name, value] : tail) expected.emplace_back(lower(name), name, value);
  FUZZ_CHECK(grouped(expected) == grouped(list_of(written)),
             "the written head holds the kept fields and the relay's own, nothing else");
}

std::vector<std::pair<std::string, std::string>> framing_fields(const Framing& framing) {
  if (framing.kind == Framing::Kind::length) {
    return {{"Content-Length", std::to_string(framing.length)}};
  }
  if (framing.kind == Framing::Kind::chunked) return {{"Transfer-Encoding", "chunked"}};
  return {};
}

void request(std::string_view head_bytes) {
  std::vector<HeaderField> fields;
  std::vector<std::string_view> body;
  RequestHead ours(fields, body);
  ours.header_limit(kHeaderLimit);
  boost::beast::error_code ec;
  const std::size_t used = parse_head(ours, head_bytes, ec);

  http::request_parser<http::empty_body> reference;
  reference.header_limit(kHeaderLimit);
  boost::beast::error_code ref_ec;
  const std::size_t ref_used =
      reference.put(boost::asio::buffer(head_bytes.data(), head_bytes.size()), ref_ec);
  // Ours refuse a folded field where Beast's parser unfolds it (and may fail later, or not).
  if (ec == http::error::bad_value && has_fold(head_bytes)) return;
  FUZZ_CHECK(ec == ref_ec, "requests: same verdict as Beast's parser");
  if (ec) return;
  FUZZ_CHECK(used == ref_used && used == head_bytes.size(), "the whole head consumed");
  const auto& msg = reference.get();
  FUZZ_CHECK(ours.method == msg.method() &&
                 ours.method_string == std::string_view(msg.method_string()) &&
                 ours.target == std::string_view(msg.target()) &&
                 ours.version == static_cast<int>(msg.version()),
             "same request line");
  check_same_fields(fields, msg, head_bytes);
  FUZZ_CHECK(ours.keep_alive() == reference.keep_alive() && ours.chunked() == reference.chunked() &&
                 ours.content_length() == reference.content_length(),
             "same framing and keep-alive");

  // The head the relay sends upstream for it.
  Framing framing;
  if (const auto length = ours.content_length()) {
    framing = {Framing::Kind::length, *length};
  } else if (!ours.is_done()) {
    framing = {Framing::Kind::chunked, 0};
  }
  std::string written;
  write_request_head(written, ours.method_string, {"/core", "/api/states", "?a=1"}, fields, kFixed,
                     framing);
  http::request_parser<http::empty_body> again;
  again.header_limit(kHeaderLimit + 4096);
  boost::beast::error_code again_ec;
  again.put(boost::asio::buffer(written), again_ec);
  FUZZ_CHECK(!again_ec && again.is_header_done(), "the upstream head parses");
  FUZZ_CHECK(std::string_view(again.get().method_string()) == ours.method_string &&
                 again.get().target() == "/core/api/states?a=1",
             "the upstream request line");
  std::vector<HeaderField> kept;
  const ConnectionOptions options(fields);
  for (const auto& f : fields) {
    if (is_hop_by_hop(f) || options.names(f) || is_client_identity_field(f) ||
        f.name == http::field::host || f.name == http::field::authorization ||
        f.name == http::field::content_length || f.name == http::field::expect) {
      continue;
    }
    kept.push_back(f);
  }
  auto tail = std::vector<std::pair<std::string, std::string>>{{"Host", "supervisor"},
                                                               {"Authorization", "Bearer s3cret"}};
  for (auto& f : framing_fields(framing)) tail.push_back(f);
  check_written_fields(again.get(), kept, tail);
}

void response(std::string_view head_bytes, bool keep_alive, int client_version) {
  std::vector<HeaderField> fields;
  std::vector<std::string_view> body;
  ResponseHead ours(fields, body);
  ours.header_limit(kHeaderLimit);
  boost::beast::error_code ec;
  const std::size_t used = parse_head(ours, head_bytes, ec);

  http::response_parser<http::empty_body> reference;
  reference.header_limit(kHeaderLimit);
  boost::beast::error_code ref_ec;
  const std::size_t ref_used =
      reference.put(boost::asio::buffer(head_bytes.data(), head_bytes.size()), ref_ec);
  if (ec == http::error::bad_value && has_fold(head_bytes)) return;
  FUZZ_CHECK(ec == ref_ec, "responses: same verdict as Beast's parser");
  if (ec) return;
  FUZZ_CHECK(used == ref_used && used == head_bytes.size(), "the whole head consumed");
  const auto& msg = reference.get();
  // basic_fields reports the standard phrase for an empty reason; ours keeps what was sent.
  const bool same_reason = ours.reason == std::string_view(msg.reason()) ||
                           (ours.reason.empty() &&
                            std::string_view(msg.reason()) == http::obsolete_reason(msg.result()));
  FUZZ_CHECK(ours.status == msg.result_int() && same_reason &&
                 ours.version == static_cast<int>(msg.version()),
             "same status line");
  check_same_fields(fields, msg, head_bytes);

  Framing framing;
  if (const auto length = ours.content_length()) {
    framing = {Framing::Kind::length, *length};
  } else if (client_version >= 11) {
    framing = {Framing::Kind::chunked, 0};
  }
  std::string written;
  write_response_head(written, ours.status, ours.reason, fields, framing, keep_alive,
                      client_version);
  http::response_parser<http::empty_body> again;
  again.header_limit(kHeaderLimit + 4096);
  again.skip(true);  // only the head matters here
  boost::beast::error_code again_ec;
  again.put(boost::asio::buffer(written), again_ec);
  FUZZ_CHECK(!again_ec && again.is_header_done(), "the client's head parses");
  FUZZ_CHECK(again.get().result_int() == ours.status && again.get().version() == 11,
             "the client's status line");
  std::vector<HeaderField> kept;
  const ConnectionOptions options(fields);
  for (const auto& f : fields) {
    if (!is_hop_by_hop(f) && !options.names(f) && f.name != http::field::content_length) {
      kept.push_back(f);
    }
  }
  auto tail = framing_fields(framing);
  if (!keep_alive) tail.emplace_back("Connection", "close");
  if (keep_alive && client_version < 11) tail.emplace_back("Connection", "keep-alive");
  check_written_fields(again.get(), kept, tail);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool is_response = (data[0] & 0x80) != 0;
  const std::size_t split = data[0] & 0x7F;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  // The end of the head, as the relay looks for it while the bytes arrive in two reads.
  std::size_t scanned = 0;
  std::size_t end = find_head_end(bytes.substr(0, std::min(split, bytes.size())), scanned);
  if (end == std::string_view::npos) end = find_head_end(bytes, scanned);
  const std::size_t at_once = bytes.find("\r\n\r\n");
  FUZZ_CHECK(end == (at_once == std::string_view::npos ? at_once : at_once + 4),
             "the head's end found in two reads as in one");
  if (end == std::string_view::npos) return 0;

  const std::string_view head = bytes.substr(0, end);
  if (is_response) {
    response(head, (split & 1) != 0, (split & 2) != 0 ? 10 : 11);
  } else {
    request(head);
  }
  return 0;
}
