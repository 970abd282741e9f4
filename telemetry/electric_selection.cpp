#include "telemetry/electric_selection.hpp"

#include "common/text.hpp"
#include "telemetry/string_field.hpp"

namespace dinodia::telemetry {

using json = nlohmann::json;

std::map<std::string, ElectricDescriptor> electric_selection(const HaRegistries& registries,
                                                             const std::string& label) {
  std::map<std::string, std::string> label_names, area_names;
  std::map<std::string, json> devices;
  for (const auto& l : registries.labels) {
    auto id = string_field(l, "label_id");
    auto name = string_field(l, "name");
    if (id && name) label_names[*id] = *name;
  }
  for (const auto& a : registries.areas) {
    auto id = string_field(a, "area_id");
    auto name = string_field(a, "name");
    if (id && name) area_names[*id] = *name;
  }
  for (const auto& d : registries.devices) {
    if (auto id = string_field(d, "id")) devices[*id] = d;
  }
  auto has_label = [&](const json& labels) {
    if (!labels.is_array()) return false;
    for (const auto& l : labels) {
      if (!l.is_string()) continue;
      auto it = label_names.find(l.get<std::string>());
      if (it != label_names.end() && text::lower(text::trim(it->second)) == label) return true;
    }
    return false;
  };
  std::map<std::string, ElectricDescriptor> selection;
  for (const auto& e : registries.entities) {
    auto id = string_field(e, "entity_id");
    if (!id || !is_electric_entity_id(*id)) continue;
    auto truthy = [&](const char* k) {
      const json v = e.value(k, json());
      return !(v.is_null() || (v.is_string() && v.get<std::string>().empty()) ||
               (v.is_boolean() && !v.get<bool>()));
    };
    if (truthy("disabled_by") || truthy("hidden_by")) continue;
    const json* device = nullptr;
    if (auto did = string_field(e, "device_id")) {
      auto it = devices.find(*did);
      if (it != devices.end()) device = &it->second;
    }
    if (!has_label(e.value("labels", json())) &&
        !(device && has_label(device->value("labels", json())))) {
      continue;
    }
    ElectricDescriptor d;
    d.entity_id = *id;
    d.entity_name =
        string_field(e, "name").value_or(string_field(e, "original_name").value_or(*id));
    d.area_id = string_field(e, "area_id");
    if (!d.area_id && device) d.area_id = string_field(*device, "area_id");
    if (d.area_id) {
      auto it = area_names.find(*d.area_id);
      if (it != area_names.end()) d.area_name = it->second;
    }
    selection.emplace(*id, std::move(d));
  }
  return selection;
}

}  // namespace dinodia::telemetry
