#include "ha_bridge/detail/ws_write_tracker.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

namespace dinodia::ha_bridge::detail {
namespace {

using nlohmann::json;

// Commands are small; a larger frame is counted as a write without being parsed.
constexpr std::size_t kMaxParsedBytes = std::size_t{16} * 1024;

constexpr std::array<std::string_view, 8> kReads = {
    "ping",       "get_states",      "get_config",         "get_services",
    "get_panels", "render_template", "supported_features", "auth/current_user",
};
constexpr std::array<std::string_view, 3> kReadSuffixes = {"/list", "/list_for_display", "/get"};

bool is_read(const json& command) {
  if (!command.is_object()) return false;
  const auto type = command.find("type");
  if (type == command.end() || !type->is_string()) return false;
  const std::string_view name = type->get_ref<const std::string&>();
  if (name.starts_with("subscribe") || name.starts_with("unsubscribe")) return true;
  if (std::find(kReads.begin(), kReads.end(), name) != kReads.end()) return true;
  return std::any_of(kReadSuffixes.begin(), kReadSuffixes.end(),
                     [&](std::string_view suffix) { return name.ends_with(suffix); });
}

json parse_small(std::string_view frame) {
  if (frame.size() > kMaxParsedBytes) return json();
  return json::parse(frame, nullptr, /*allow_exceptions=*/false);
}

// The id a frame from Home Assistant starts with (`{"id":7,…`), if any.
bool leads_with_id(std::string_view frame, std::uint64_t& id) {
  constexpr std::string_view kPrefix = R"({"id":)";
  if (!frame.starts_with(kPrefix)) return false;
  const char* const end = frame.data() + frame.size();
  const auto [after, ec] = std::from_chars(frame.data() + kPrefix.size(), end, id);
  return ec == std::errc() && after != end && *after == ',';
}

}  // namespace

bool WsWriteTracker::client_frame(std::string_view frame) {
  const json parsed = parse_small(frame);
  const auto remember = [&](const json& command) {
    if (is_read(command)) return false;
    const auto id = command.is_object() ? command.find("id") : command.end();
    if (command.is_object() && id != command.end() && id->is_number_unsigned() &&
        pending_.size() < kMaxPending) {
      pending_.push_back(id->get<std::uint64_t>());
    } else {
      unknown_pending_ = true;
    }
    return true;
  };
  if (parsed.is_array()) {
    bool wrote = parsed.empty();
    for (const auto& command : parsed) wrote = remember(command) || wrote;
    return wrote;
  }
  return remember(parsed);
}

bool WsWriteTracker::upstream_frame(std::string_view frame) {
  if (pending_.empty() && !unknown_pending_) return false;
  bool answered = std::exchange(unknown_pending_, false);
  std::uint64_t id = 0;
  if (leads_with_id(frame, id)) {
    const auto it = std::find(pending_.begin(), pending_.end(), id);
    if (it != pending_.end()) {
      pending_.erase(it);
      answered = true;
    }
  } else if (!pending_.empty()) {
    // A coalesced batch (`[{"id":…},…]`) or a frame written another way: any pending id it
    // names is answered.
    std::erase_if(pending_, [&](std::uint64_t pending) {
      const std::string needle = "\"id\":" + std::to_string(pending) + ",";
      const bool named = frame.find(needle) != std::string_view::npos;
      answered = answered || named;
      return named;
    });
  }
  return answered;
}

}  // namespace dinodia::ha_bridge::detail
