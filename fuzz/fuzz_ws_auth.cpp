// Fuzzes the client side of the WebSocket auth phase and the command filter
// (ha_bridge/detail/ws_command_filter.hpp, docs/lan-bridge.md), then
// feeds the extracted access token to a TokenRegistry as ws_relay.cpp does.
//
// The filter skips parsing frames a cheap scan rules out; the main invariant is that this never
// lets through what a full parse would catch: an object with type "auth" is always client_auth
// (never forwarded) with exactly its string access_token, and no supervisor/ or hassio/
// command reaches Core, alone or inside a batch. Replies are well-formed unauthorized results.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/text.hpp"
#include "fuzz/fuzz_check.hpp"
#include "ha_bridge/detail/ws_command_filter.hpp"
#include "ha_bridge/token_registry.hpp"

namespace {

using dinodia::ha_bridge::detail::ClientFrameVerdict;
using dinodia::ha_bridge::detail::inspect_client_text;
using dinodia::ha_bridge::detail::is_denied_ws_type;
using dinodia::ha_bridge::detail::is_hassio_domain;
using nlohmann::json;
using Action = ClientFrameVerdict::Action;

constexpr std::string_view kKnownToken = "kiosk-token-0123456789abcdef";

const std::string* type_of(const json& message) {
  if (!message.is_object()) return nullptr;
  auto it = message.find("type");
  if (it == message.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// With the default policy: supervisor/ and hassio/ commands, and call_service to hassio.
bool is_denied(const json& message) {
  const std::string* type = type_of(message);
  if (type == nullptr) return false;
  if (is_denied_ws_type(*type)) return true;
  if (*type != "call_service") return false;
  auto domain = message.find("domain");
  return domain != message.end() && domain->is_string() &&
         is_hassio_domain(domain->get_ref<const std::string&>());
}

void check_reply(const std::string& reply) {
  json parsed = json::parse(reply, nullptr, false);
  FUZZ_CHECK(parsed.is_object(), "reply is a JSON object");
  FUZZ_CHECK(parsed.value("type", "") == "result", "reply type is result");
  FUZZ_CHECK(parsed.value("success", true) == false, "reply is not a success");
  FUZZ_CHECK(parsed.contains("error") && parsed["error"].is_object() &&
                 parsed["error"].value("code", "") == "unauthorized",
             "reply error code is unauthorized");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static dinodia::ha_bridge::TokenRegistry* registry = [] {
    auto* r = new dinodia::ha_bridge::TokenRegistry();
    r->set_local({std::string(kKnownToken)}, {});
    return r;
  }();
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  const ClientFrameVerdict verdict = inspect_client_text(frame);
  for (const auto& reply : verdict.local_replies) check_reply(reply);

  // Reference decision from a full parse, without the cheap pre-scan.
  const json parsed = json::parse(frame, nullptr, false);
  const std::string* type = parsed.is_discarded() ? nullptr : type_of(parsed);

  if (!dinodia::text::json_nesting_within(frame, dinodia::ha_bridge::detail::kMaxInspectedDepth)) {
    // Too deep to take apart: either dropped whole, or (when nothing in it could be an auth
    // message or a denied command) forwarded untouched; never answered piecemeal.
    FUZZ_CHECK(verdict.local_replies.empty(), "no piecemeal replies for a too-deep frame");
    FUZZ_CHECK(verdict.action == Action::drop || verdict.action == Action::forward_original,
               "a too-deep frame is dropped or forwarded whole");
    if (verdict.action == Action::forward_original) {
      FUZZ_CHECK(type == nullptr || (*type != "auth" && !is_denied_ws_type(*type)),
                 "a forwarded too-deep frame is neither auth nor denied");
      if (!parsed.is_discarded() && parsed.is_array()) {
        for (const auto& element : parsed) {
          FUZZ_CHECK(!is_denied(element), "a forwarded too-deep batch hides no denied command");
        }
      }
    }
    return 0;
  }

  if (parsed.is_discarded()) {
    // Not JSON to the filter's parser: forwarded untouched only when the scan rules out any
    // auth message or denied command, otherwise refused (fail closed); never answered.
    FUZZ_CHECK(verdict.action == Action::forward_original || verdict.action == Action::refuse,
               "an unparseable frame is forwarded untouched or refused");
    FUZZ_CHECK(verdict.local_replies.empty(), "no local reply for an unparseable frame");
    return 0;
  }
  FUZZ_CHECK(verdict.action != Action::refuse, "only an unparseable frame is refused");

  if (type != nullptr && *type == "auth") {
    FUZZ_CHECK(verdict.action == Action::client_auth, "an auth message is never forwarded");
    auto it = parsed.find("access_token");
    const std::string expected =
        it != parsed.end() && it->is_string() ? it->get<std::string>() : std::string();
    FUZZ_CHECK(verdict.access_token == expected, "access_token extracted exactly");
    const bool accepted = registry->accepts(dinodia::text::trim(verdict.access_token));
    FUZZ_CHECK(accepted == (dinodia::text::trim(verdict.access_token) == kKnownToken),
               "only the known hub token is accepted");
    FUZZ_CHECK(verdict.local_replies.empty(), "auth gets no local reply");
    return 0;
  }
  FUZZ_CHECK(verdict.action != Action::client_auth, "client_auth only for type auth");
  FUZZ_CHECK(verdict.access_token.empty(), "access_token only for auth");

  if (type != nullptr && is_denied(parsed)) {
    FUZZ_CHECK(verdict.action == Action::drop, "a denied command is dropped");
    FUZZ_CHECK(verdict.local_replies.size() == 1, "one reply for a denied command");
    return 0;
  }

  std::size_t denied = 0;
  if (!parsed.is_discarded() && parsed.is_array()) {
    for (const auto& element : parsed) denied += is_denied(element) ? 1 : 0;
  }
  FUZZ_CHECK(verdict.local_replies.size() == denied, "one reply per denied batch element");
  if (denied == 0) {
    FUZZ_CHECK(verdict.action == Action::forward_original, "clean frames go through as they are");
    FUZZ_CHECK(verdict.rewritten.empty(), "no rewrite for clean frames");
    return 0;
  }
  if (denied == parsed.size()) {
    FUZZ_CHECK(verdict.action == Action::drop, "an all-denied batch is dropped");
    return 0;
  }
  FUZZ_CHECK(verdict.action == Action::forward_rewritten, "a mixed batch is rewritten");
  const json kept = json::parse(verdict.rewritten, nullptr, false);
  FUZZ_CHECK(kept.is_array(), "rewritten batch is an array");
  FUZZ_CHECK(kept.size() + denied == parsed.size(), "only denied elements are removed");
  for (const auto& element : kept) FUZZ_CHECK(!is_denied(element), "no denied element kept");
  return 0;
}
