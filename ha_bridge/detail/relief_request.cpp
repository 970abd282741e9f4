#include "ha_bridge/detail/relief_request.hpp"

#include <array>

#include "common/text.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

constexpr std::string_view kTemplatePath = "/api/template";

// Fields that can change Home Assistant's answer (its content negotiation, CORS) and so are
// part of the key, in the order they are keyed.
constexpr std::array kKeyedFields = {
    http::field::accept,       http::field::accept_encoding, http::field::accept_language,
    http::field::content_type, http::field::origin,          http::field::user_agent,
};

// Fields that change nothing in the answer: framing and connection handling (rendered per
// client by the relay), the hub token (checked per request before any lookup), and what
// browsers add about the page that asks.
bool is_neutral(const HeaderField& f) {
  switch (f.name) {
    case http::field::host:
    case http::field::authorization:
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::content_length:
    case http::field::referer:
      return true;
    case http::field::unknown:
      return text::istarts_with(f.name_string, "sec-fetch-") ||
             text::iequals(f.name_string, "x-requested-with");
    default:
      return false;
  }
}

}  // namespace

std::optional<ReliefRequest> relief_request(const RequestHead& head,
                                            const NormalisedTarget& target) {
  ReliefRequest out;
  const auto length = head.content_length();
  if (head.method == http::verb::get) {
    if (!head.is_done()) return std::nullopt;  // a GET with a body
    out.key = "GET ";
  } else if (head.method == http::verb::post && target.client_path == kTemplatePath) {
    if (!length || *length == 0 || *length > kReliefMaxTemplateBody || head.chunked()) {
      return std::nullopt;
    }
    out.key = "POST ";
    out.body_length = *length;
  } else {
    return std::nullopt;
  }

  std::array<std::string_view, kKeyedFields.size()> keyed{};
  std::array<bool, kKeyedFields.size()> seen{};
  for (const auto& f : *head.fields) {
    if (is_neutral(f)) continue;
    std::size_t i = 0;
    while (i < kKeyedFields.size() && kKeyedFields[i] != f.name) ++i;
    if (i == kKeyedFields.size() || seen[i]) return std::nullopt;  // unusual, or repeated
    seen[i] = true;
    keyed[i] = f.value;
  }
  out.key.append(target.client_path).append(target.search);
  for (std::size_t i = 0; i < keyed.size(); ++i) {
    // "\n<index><present>value": a missing field and an empty one are different requests.
    out.key.append("\n").push_back(static_cast<char>('0' + i));
    out.key.push_back(seen[i] ? '+' : '-');
    out.key.append(keyed[i]);
  }
  out.key.append("\n\n");

  if (target.client_path == "/api/") {
    out.depends = 0;  // "API running.": the same while Home Assistant runs
  } else if (target.client_path == "/api/config") {
    out.depends = kOnConfig;
  } else {
    // States, templates and everything else: dropped on any event (conservative).
    out.depends = kOnStates | kOnRegistry | kOnConfig;
  }
  return out;
}

bool is_relief_write(http::verb method, std::string_view client_path) {
  if (method == http::verb::get || method == http::verb::head) return false;
  return !(method == http::verb::post && client_path == kTemplatePath);
}

}  // namespace dinodia::ha_bridge::detail
