#pragma once
// The one rule for a `hassio.*` action inside a script or automation (docs/lan-bridge.md, "The
// command filter"; docs/http-input.md): shared by the WebSocket filter (`execute_script`) and
// the HTTP relay (scripts and automations saved through /api/config). Pure functions, no Asio.
#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace dinodia::ha_bridge::detail {

// True when `value`, at any depth, has an object member named "service", "action" or
// "service_template" (the legacy spelling Core still takes, a plain service name included)
// whose string value names a service of the hassio domain: the part before the first '.' is
// `hassio` as is_hassio_domain reads it (Core lower-cases). Also true when `value` nests deeper
// than kMaxInspectedDepth: it is not taken apart (fail closed).
bool names_hassio_action(const nlohmann::json& value);

// The same for JSON text (a request body): also true when the text nests deeper than
// kMaxInspectedDepth or is not JSON nlohmann reads (fail closed: Core's parser might read an
// action in it).
bool text_may_name_hassio_action(std::string_view json_text);

}  // namespace dinodia::ha_bridge::detail
