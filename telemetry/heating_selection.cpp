#include "telemetry/heating_selection.hpp"

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "telemetry/string_field.hpp"

namespace dinodia::telemetry {

std::map<std::string, HeatingLabel> heating_label_ids(const nlohmann::json& label_registry,
                                                      const std::vector<std::string>& wanted,
                                                      std::vector<std::string>& wanted_names) {
  std::map<std::string, std::string> id_by_name;
  for (const auto& l : label_registry) {
    auto name = string_field(l, "name");
    auto id = string_field(l, "label_id");
    if (name && id) id_by_name[text::lower(*name)] = *id;
  }
  std::map<std::string, HeatingLabel> label_ids;
  for (const auto& n : wanted) {
    const std::string lower = text::lower(text::trim(n));
    wanted_names.push_back(lower);
    auto it = id_by_name.find(lower);
    if (it == id_by_name.end()) continue;
    if (lower == "boiler") label_ids[it->second] = HeatingLabel::boiler;
    if (lower == "radiator") label_ids[it->second] = HeatingLabel::radiator;
  }
  return label_ids;
}

std::map<std::string, HeatingLabel> heating_selection(
    const nlohmann::json& entities, const std::map<std::string, HeatingLabel>& label_ids,
    std::size_t cap) {
  std::map<std::string, HeatingLabel> selection;
  for (const auto& row : entities) {
    if (selection.size() >= cap) break;
    auto id = string_field(row, "ei");
    const nlohmann::json lb =
        row.is_object() ? row.value("lb", nlohmann::json()) : nlohmann::json();
    if (!id || !lb.is_array()) continue;
    for (const auto& l : lb) {
      if (!l.is_string()) continue;
      auto w = label_ids.find(l.get<std::string>());
      if (w != label_ids.end()) {
        selection.emplace(*id, w->second);
        break;
      }
    }
  }
  return selection;
}

}  // namespace dinodia::telemetry
