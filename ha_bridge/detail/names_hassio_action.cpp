#include "ha_bridge/detail/names_hassio_action.hpp"

#include <nlohmann/json.hpp>
#include <string>

#include "common/text.hpp"
#include "ha_bridge/detail/ws_command_filter.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

using nlohmann::json;

// The keys of a script step that name the service it calls (Core's cv.SERVICE_SCHEMA:
// `action` is read as `service`, `service_template` takes a plain service name too).
bool is_action_key(std::string_view key) {
  return key == "service" || key == "action" || key == "service_template";
}

bool names_hassio_service_name(std::string_view name) {
  return is_hassio_domain(name.substr(0, name.find('.')));
}

// `depth` counts the objects and arrays around `value`, itself included, as
// text::json_nesting_within does.
bool names_at(const json& value, int depth) {
  if (depth > kMaxInspectedDepth) return true;
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      if (member.is_string() && is_action_key(key) &&
          names_hassio_service_name(member.get_ref<const std::string&>())) {
        return true;
      }
      if (member.is_structured() && names_at(member, depth + 1)) return true;
    }
  } else if (value.is_array()) {
    for (const auto& element : value) {
      if (element.is_structured() && names_at(element, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace

bool names_hassio_action(const json& value) {
  return names_at(value, 1);
}

bool text_may_name_hassio_action(std::string_view json_text) {
  if (!text::json_nesting_within(json_text, kMaxInspectedDepth)) return true;
  const json parsed = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() || names_hassio_action(parsed);
}

}  // namespace dinodia::ha_bridge::detail
