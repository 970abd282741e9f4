#include "ha_bridge/detail/ws_command_filter.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

using nlohmann::json;

bool might_need_inspection(std::string_view frame) {
  return frame.find('\\') != std::string_view::npos ||
         frame.find("auth") != std::string_view::npos ||
         frame.find("supervisor/") != std::string_view::npos ||
         frame.find("hassio/") != std::string_view::npos;
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

bool is_denied_command(const json& message) {
  const std::string* type = type_of(message);
  return type != nullptr && is_denied_ws_type(*type);
}

}  // namespace

bool is_denied_ws_type(std::string_view type) {
  return type.starts_with("supervisor/") || type.starts_with("hassio/");
}

ClientFrameVerdict inspect_client_text(std::string_view frame) {
  ClientFrameVerdict verdict;
  if (!might_need_inspection(frame)) return verdict;

  if (!text::json_nesting_within(frame, kMaxInspectedDepth)) {
    // Could hide an auth message or a denied command that we cannot safely take apart: nothing
    // goes upstream. Core would refuse such a frame anyway.
    verdict.action = ClientFrameVerdict::Action::drop;
    return verdict;
  }
  // Frames that are not JSON go through unchanged: Core answers them itself (invalid_format or
  // a disconnect), exactly as it would without the bridge.
  json parsed = json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return verdict;

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
    if (is_denied_ws_type(*type)) {
      verdict.action = ClientFrameVerdict::Action::drop;
      verdict.local_replies.push_back(unauthorized_reply(parsed));
    }
    return verdict;
  }

  if (parsed.is_array()) {
    // Core handles every element of a batch as its own command (ha-protocols.md §1.3), so each
    // element is checked; only a batch that actually loses elements is re-serialised.
    json kept = json::array();
    for (auto& element : parsed) {
      if (is_denied_command(element)) {
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
