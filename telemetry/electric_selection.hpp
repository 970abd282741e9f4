#pragma once
// Which light.* / switch.* entities electric usage tracks (legacy-compatible; see
// docs/compatibility.md): enabled, visible entities carrying the tracking label themselves or
// through their device, with their name and area (the entity's own, else its device's). Pure:
// the caller fetches the four HA registries.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "telemetry/electric.hpp"

namespace dinodia::telemetry {

// The results of config/{label,entity,device,area}_registry/list.
struct HaRegistries {
  nlohmann::json labels, entities, devices, areas;
};

// Entity id -> descriptor. `label` is electric_usage_tracking_label lowercased and trimmed; it
// is compared with each label's name the same way.
std::map<std::string, ElectricDescriptor> electric_selection(const HaRegistries& registries,
                                                             const std::string& label);

}  // namespace dinodia::telemetry
