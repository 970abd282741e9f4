#pragma once
// Reading Home Assistant's JSON (registry rows, events, states) defensively: a field is used only
// when it is a non-blank string.
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace dinodia::telemetry {

// obj[key] trimmed, when `obj` is an object and that is a string that is not blank after trimming.
std::optional<std::string> string_field(const nlohmann::json& obj, const char* key);

}  // namespace dinodia::telemetry
