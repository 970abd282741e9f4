#pragma once
// The WebSocket reads that decide which entities the usage trackers follow, and what they give
// (the rules themselves are in telemetry/heating_selection.hpp and
// telemetry/electric_selection.hpp). Callback style, like the tracker loop that calls them: `ws`
// sends a request on the tracker's connection and runs its handler on the tracker's strand, and so
// does `done`.
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "telemetry/electric.hpp"
#include "telemetry/heating.hpp"

namespace dinodia::agent {

using WsHandler = std::function<void(std::string error, nlohmann::json result)>;
using WsRequest = std::function<void(std::string type, WsHandler handler)>;

using HeatingSelection = std::map<std::string, telemetry::HeatingLabel>;
using ElectricSelection = std::map<std::string, telemetry::ElectricDescriptor>;

// Label registry, then config/entity_registry/list_for_display. `done` gets the new selection
// (empty when none of `labels` exists in HA), or nullopt when a read failed: the caller then
// keeps its current selection. Logs the outcome.
void fetch_heating_selection(const WsRequest& ws, std::vector<std::string> labels, std::size_t cap,
                             std::function<void(std::optional<HeatingSelection>)> done);

// The label, entity, device and area registries, read in parallel. `done` gets the selection, or
// nullopt (logged) when any read failed.
void fetch_electric_selection(const WsRequest& ws, std::string label,
                              std::function<void(std::optional<ElectricSelection>)> done);

}  // namespace dinodia::agent
