#include "agent/doctor_endpoint.hpp"

#include <optional>
#include <utility>

#include "agent/sync_status_endpoint.hpp"
#include "common/crypto.hpp"
#include "common/text.hpp"

namespace dinodia::agent {

ha_bridge::LocalRoute doctor_route(const std::string& configured_token, DoctorJsonRunner run) {
  std::string token(text::trim(configured_token));
  const bool available = static_cast<bool>(run) && !token.empty();
  // Checked on the head, before any body is read. Unlike sync-status (whose 404 for a wrong
  // token is 0.4.17's, docs/compatibility.md#sync-status) this route is new, so a caller without
  // the token is told so.
  ha_bridge::LocalAdmission admit =
      [token = std::move(token), available](
          const ha_bridge::LocalRequest& request) -> std::optional<ha_bridge::LocalResponse> {
    ha_bridge::LocalResponse refusal;
    if (!available) {
      refusal.status = 404;
      refusal.body = R"({"error":"Not found."})";
      return refusal;
    }
    const std::string presented = presented_sync_status_token(request);
    if (!presented.empty() && crypto::constant_time_equal(presented, token)) return std::nullopt;
    refusal.status = 401;
    refusal.body = R"({"error":"Unauthorized."})";
    refusal.headers.emplace_back("www-authenticate", "Bearer");
    return refusal;
  };
  return {
      "GET", "/_dinodia/doctor",
      [run = std::move(run)](const ha_bridge::LocalRequest&, const ha_bridge::Responder& respond) {
        run([respond](const nlohmann::ordered_json& body) {
          ha_bridge::LocalResponse response;
          response.body = body.dump();
          response.headers.emplace_back("cache-control", "no-store");
          respond(std::move(response));
        });
      },
      0, std::move(admit)};
}

}  // namespace dinodia::agent
