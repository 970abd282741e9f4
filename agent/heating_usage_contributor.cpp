#include "agent/heating_usage_contributor.hpp"

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/log.hpp"

namespace dinodia::agent {
namespace {

using json = nlohmann::json;
using telemetry::ElectricTracker;
using telemetry::HeatingTracker;

constexpr const char* kAckKey = "heatingUsageResetAckAt";

bool carries_ack(const json& sent_body) {
  return sent_body.contains(kAckKey) && sent_body[kAckKey].is_string();
}

}  // namespace

void HeatingUsageContributor::contribute(json& request_body) {
  ledger_.with([&](const HeatingTracker& heating, const ElectricTracker& electric) {
    std::optional<std::string> ack = heating.reset_ack();
    if (!ack) ack = electric.reset_acknowledgement();
    if (ack) request_body[kAckKey] = *ack;
    if (json h = heating.upload_body(clock::unix_millis()); !h.is_null()) {
      request_body["heatingUsage"] = std::move(h);
    }
  });
}

void HeatingUsageContributor::on_response(const json& sent_body, const json& response) {
  if (!response.is_object()) return;
  ledger_.with([&](HeatingTracker& heating, ElectricTracker& electric) {
    if (response.contains("heatingUsageConfig")) {
      heating.apply_config(response["heatingUsageConfig"]);
    }
    const json reset_at = response.value("heatingUsageResetAt", json());
    if (heating.reset_due(reset_at) && reset_at.is_string()) {
      const std::string r = reset_at.get<std::string>();
      heating.apply_reset(r);
      electric.apply_reset(r);
      log::info("Heating usage state reset applied", log::Fields().add("resetAt", r));
    } else if (reset_at.is_null() && carries_ack(sent_body)) {
      heating.reset_ack_confirmed(sent_body[kAckKey].get<std::string>());
    }
  });
  ledger_.save();
}

void HeatingUsageContributor::on_committed(const json& sent_body) {
  ledger_.with([&](HeatingTracker& heating, ElectricTracker& electric) {
    if (sent_body.contains("heatingUsage")) {
      heating.acknowledge(sent_body["heatingUsage"], clock::unix_millis());
    }
    if (carries_ack(sent_body)) electric.acknowledge_reset(sent_body[kAckKey].get<std::string>());
  });
  ledger_.save();
}

}  // namespace dinodia::agent
