#pragma once
// Internal to ha_bridge: how the HTTP relay logs an answer of Home Assistant that is not 2xx.
// A config flow's 400 whose body says the flow is already done or gone is expected (an app
// retrying a step), so it is logged at info, not as a warning (docs/compatibility.md).
#include <cstddef>
#include <string>
#include <string_view>

namespace dinodia::ha_bridge::detail {

// How much of such a body is kept to look at.
inline constexpr std::size_t kFlowBodyCapture = 4096;

// Whether the answer to `method` on `path` with `status` is one whose body decides the level.
bool capture_flow_body(std::string_view method, std::string_view path, unsigned status);

// Logs a non-2xx answer (nothing for 2xx). `captured` is the start of the body when
// capture_flow_body said so, otherwise empty.
void log_upstream_status(std::string_view method, const std::string& path, unsigned status,
                         const std::string& captured);

}  // namespace dinodia::ha_bridge::detail
