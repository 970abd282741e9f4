#include "ha_bridge/detail/upstream_status_log.hpp"

#include "common/log.hpp"
#include "common/text.hpp"

namespace dinodia::ha_bridge::detail {
namespace {

bool is_expected_flow_error(std::string_view method, std::string_view path, unsigned status,
                            const std::string& body) {
  if (status != 400 || (method != "POST" && method != "DELETE")) return false;
  if (path.rfind("/api/config/config_entries/flow/", 0) != 0) return false;
  static constexpr std::string_view kPhrases[] = {
      "already configured",   "already been configured", "already created",      "create_entry",
      "flow aborted",         "flow not found",          "no config flow found", "not in progress",
      "unknown flow",         "invalid flow specified",  "does not exist",       "already finished",
      "no longer in progress"};
  const std::string lowered = text::lower(body);
  for (auto phrase : kPhrases) {
    if (lowered.find(phrase) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

bool capture_flow_body(std::string_view method, std::string_view path, unsigned status) {
  return status == 400 && (method == "POST" || method == "DELETE") &&
         path.rfind("/api/config/config_entries/flow/", 0) == 0;
}

void log_upstream_status(std::string_view method, const std::string& path, unsigned status,
                         const std::string& captured) {
  if (status >= 200 && status <= 299) return;
  log::Fields fields;
  fields.add("path", path).add("status", static_cast<int>(status));
  if (is_expected_flow_error(method, path, status, captured)) {
    log::info("Upstream HTTP non-2xx", fields);
  } else {
    log::warn("Upstream HTTP non-2xx", fields);
  }
}

}  // namespace dinodia::ha_bridge::detail
