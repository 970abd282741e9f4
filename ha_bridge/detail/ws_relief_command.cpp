#include "ha_bridge/detail/ws_relief_command.hpp"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>

namespace dinodia::ha_bridge::detail {
namespace {

constexpr std::array<std::string_view, 5> kRelievedTypes = {
    "config/entity_registry/list", "config/device_registry/list", "config/area_registry/list",
    "config/floor_registry/list",  "config/label_registry/list",
};

// A command is a few dozen bytes; a larger frame is not one of these.
constexpr std::size_t kMaxCommandBytes = 256;

constexpr std::string_view kIdPrefix = R"({"id":)";
// What follows the id in Core's successful results: its result messages (a dict serialised
// without spaces), and the prefix its entity and device registry lists are written behind (by
// hand, with a space after "type":).
constexpr std::string_view kSuccessAfterId = R"(,"type":"result","success":true,)";
constexpr std::string_view kListSuccessAfterId = R"(,"type": "result","success":true,)";

}  // namespace

std::optional<WsReliefCommand> ws_relief_command(std::string_view frame) {
  if (frame.size() > kMaxCommandBytes) return std::nullopt;
  const auto parsed = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.size() != 2) return std::nullopt;
  const auto id = parsed.find("id");
  const auto type = parsed.find("type");
  if (id == parsed.end() || type == parsed.end()) return std::nullopt;
  // Home Assistant takes ids from 1 (0 is never above the last id it saw).
  if (!id->is_number_unsigned() || id->get<std::uint64_t>() == 0 || !type->is_string()) {
    return std::nullopt;
  }
  const auto& name = type->get_ref<const std::string&>();
  for (const auto relieved : kRelievedTypes) {
    if (name == relieved) return WsReliefCommand{id->get<std::uint64_t>(), "WS " + name, name};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ws_leading_id(std::string_view frame) {
  if (!frame.starts_with(kIdPrefix)) return std::nullopt;
  const char* const digits = frame.data() + kIdPrefix.size();
  const char* const end = frame.data() + frame.size();
  std::uint64_t seen = 0;
  const auto [after, ec] = std::from_chars(digits, end, seen);
  // Digits as Home Assistant writes them: no leading zero, a comma after.
  if (ec != std::errc() || after == end || *after != ',' || *digits == '0') return std::nullopt;
  return seen;
}

bool ws_answers_id(std::string_view frame, std::uint64_t id) {
  return ws_leading_id(frame) == id;
}

std::optional<std::string> ws_result_after_id(std::string_view frame, std::uint64_t id) {
  if (!ws_answers_id(frame, id)) return std::nullopt;
  const std::string_view after_id = frame.substr(frame.find(','));
  // Only a success is held. Core writes a result's type and success right after the id, in one
  // of two layouts: then nothing needs parsing, not the whole list of a few hundred entities on
  // every list the relief asks.
  if ((after_id.starts_with(kSuccessAfterId) || after_id.starts_with(kListSuccessAfterId)) &&
      frame.ends_with('}')) {
    return std::string(after_id);
  }
  // Any other layout: the whole frame is parsed to know.
  const auto parsed = nlohmann::json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return std::nullopt;
  const auto type = parsed.find("type");
  const auto success = parsed.find("success");
  if (type == parsed.end() || *type != "result" || success == parsed.end() || *success != true) {
    return std::nullopt;
  }
  return std::string(after_id);
}

std::string ws_result_with_id(std::uint64_t id, std::string_view after_id) {
  std::string frame;
  const std::string digits = std::to_string(id);
  frame.reserve(kIdPrefix.size() + digits.size() + after_id.size());
  frame.append(kIdPrefix).append(digits).append(after_id);
  return frame;
}

}  // namespace dinodia::ha_bridge::detail
