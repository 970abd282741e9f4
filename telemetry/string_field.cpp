#include "telemetry/string_field.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"

namespace dinodia::telemetry {

std::optional<std::string> string_field(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  std::string s(text::trim(it->get<std::string>()));
  if (s.empty()) return std::nullopt;
  return s;
}

}  // namespace dinodia::telemetry
