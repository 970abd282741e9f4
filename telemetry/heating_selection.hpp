#pragma once
// Which climate entities heating usage tracks (legacy-compatible; see docs/compatibility.md):
// those whose entity-registry labels include one of the heating_usage_tracking_labels ("boiler",
// "radiator"), looked up by label name in HA's label registry. Pure: the caller fetches
// config/label_registry/list and config/entity_registry/list_for_display.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "telemetry/heating.hpp"

namespace dinodia::telemetry {

// Label id -> label for each wanted name (case-insensitive, trimmed; only "boiler" and "radiator"
// mean anything) found in a label registry list. `wanted_names` receives the names looked for,
// lowercased, for the log when none is found.
std::map<std::string, HeatingLabel> heating_label_ids(const nlohmann::json& label_registry,
                                                      const std::vector<std::string>& wanted,
                                                      std::vector<std::string>& wanted_names);

// Entity id -> label from the `entities` rows ({"ei", "lb"}) of list_for_display: the first of
// an entity's labels that is wanted decides; at most `cap` entities, in registry order.
std::map<std::string, HeatingLabel> heating_selection(
    const nlohmann::json& entities, const std::map<std::string, HeatingLabel>& label_ids,
    std::size_t cap);

}  // namespace dinodia::telemetry
