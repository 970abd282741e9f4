#include "ha_bridge/detail/ws_command_filter.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "ha_bridge/detail/names_hassio_action.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

using nlohmann::json;

bool contains_hassio_any_case(std::string_view frame) {
  for (std::size_t at = 0; at + 6 <= frame.size(); ++at) {
    if (is_hassio_domain(frame.substr(at, 6))) return true;
  }
  return false;
}

bool might_need_inspection(std::string_view frame, bool allow_hassio_domain) {
  return frame.find('\\') != std::string_view::npos ||
         frame.find("auth") != std::string_view::npos ||
         frame.find("supervisor/") != std::string_view::npos ||
         frame.find("hassio/") != std::string_view::npos ||
         (!allow_hassio_domain &&
          (frame.find("call_service") != std::string_view::npos ||
           frame.find("execute_script") != std::string_view::npos) &&
          contains_hassio_any_case(frame));
}

std::string unauthorized_reply(const json& command) {
  json id = nullptr;
  if (auto it = command.find("id"); it != command.end()) id = *it;
  // Spelled out to keep the Supervisor's key order (nlohmann::json would sort the keys).
  return R"({"id":)" + id.dump(-1, ' ', false, json::error_handler_t::replace) +
         R"(,"type":"result","success":false,"error":{"code":"unauthorized","message":"Unauthorized"}})";
}

const std::string* type_of(const json& message) {
  if (!message.is_object()) return nullptr;
  auto it = message.find("type");
  if (it == message.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

bool is_denied_command(const json& message, bool allow_hassio_domain) {
  const std::string* type = type_of(message);
  if (type == nullptr) return false;
  if (is_denied_ws_type(*type)) return true;
  if (allow_hassio_domain) return false;
  if (*type == "execute_script") return names_hassio_action(message);
  if (*type != "call_service") return false;
  auto domain = message.find("domain");
  return domain != message.end() && domain->is_string() &&
         is_hassio_domain(domain->get_ref<const std::string&>());
}

}  // namespace

bool is_denied_ws_type(std::string_view type) {
  return type.starts_with("supervisor/") || type.starts_with("hassio/");
}

bool is_hassio_domain(std::string_view domain) {
  constexpr std::string_view kHassio = "hassio";
  if (domain.size() != kHassio.size()) return false;
  for (std::size_t i = 0; i < kHassio.size(); ++i) {
    const char c = domain[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kHassio[i]) return false;
  }
  return true;
}

ClientFrameVerdict inspect_client_text(std::string_view frame, bool allow_hassio_domain) {
  ClientFrameVerdict verdict;
  if (!might_need_inspection(frame, allow_hassio_domain)) return verdict;

  if (!text::json_nesting_within(frame, kMaxInspectedDepth)) {
    // Could hide an auth message or a denied command that we cannot safely take apart: nothing
    // goes upstream. Core would refuse such a frame anyway.
    verdict.action = ClientFrameVerdict::Action::drop;
    return verdict;
  }
  // Fail closed: a frame we cannot read (a lone surrogate, 1e999, ...) might still read as a
  // denied command to Core's parser. Core disconnects a client whose frame is not JSON; the
  // relay does the same without forwarding it.
  json parsed = json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    verdict.action = ClientFrameVerdict::Action::refuse;
    return verdict;
  }

  if (parsed.is_object()) {
    const std::string* type = type_of(parsed);
    if (type == nullptr) return verdict;
    if (*type == "auth") {
      verdict.action = ClientFrameVerdict::Action::client_auth;
      if (auto it = parsed.find("access_token"); it != parsed.end() && it->is_string()) {
        verdict.access_token = it->get<std::string>();
      }
      return verdict;
    }
    if (is_denied_command(parsed, allow_hassio_domain)) {
      verdict.action = ClientFrameVerdict::Action::drop;
      verdict.local_replies.push_back(unauthorized_reply(parsed));
    }
    return verdict;
  }

  if (parsed.is_array()) {
    // Core handles every element of a batch as its own command, so each element is checked; only a
    // batch that actually loses elements is re-serialised.
    json kept = json::array();
    for (auto& element : parsed) {
      if (is_denied_command(element, allow_hassio_domain)) {
        verdict.local_replies.push_back(unauthorized_reply(element));
      } else {
        kept.push_back(std::move(element));
      }
    }
    if (verdict.local_replies.empty()) return verdict;
    if (kept.empty()) {
      verdict.action = ClientFrameVerdict::Action::drop;
    } else {
      verdict.action = ClientFrameVerdict::Action::forward_rewritten;
      verdict.rewritten = kept.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  return verdict;
}

}  // namespace dinodia::ha_bridge::detail
