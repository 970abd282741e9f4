#pragma once
// GET /_dinodia/doctor (addon/DOCS.md#installer-diagnostics): the doctor report (agent/doctor.hpp)
// as JSON, made afresh for each request. Protected by sync_status_token, presented as for
// /_dinodia/sync-status (presented_sync_status_token, constant-time comparison): without the
// option the route does not exist (404 like any missing route); with it, a missing or wrong token
// gets 401 {"error":"Unauthorized."}.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "ha_bridge/local_routes.hpp"

namespace dinodia::agent {

// `run` starts a report and calls its argument with the JSON body when it is ready (from any
// thread); null: the route answers 404.
using DoctorJsonRunner = std::function<void(std::function<void(nlohmann::ordered_json)>)>;

ha_bridge::LocalRoute doctor_route(const std::string& configured_token, DoctorJsonRunner run);

}  // namespace dinodia::agent
