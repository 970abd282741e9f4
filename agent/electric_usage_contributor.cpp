#include "agent/electric_usage_contributor.hpp"

#include <nlohmann/json.hpp>

#include "common/clock.hpp"

namespace dinodia::agent {
namespace {

using json = nlohmann::json;
using telemetry::ElectricTracker;
using telemetry::HeatingTracker;

constexpr const char* kOptionalKeys[] = {"entityName", "areaId", "areaName"};

void strip_null_optionals(json& electric_usage) {
  for (auto& row : electric_usage["devices"]) {
    for (const char* k : kOptionalKeys) {
      if (row.contains(k) && row[k].is_null()) row.erase(k);
    }
  }
}

void restore_null_optionals(json& electric_usage) {
  if (!electric_usage.is_object() || !electric_usage.value("devices", json()).is_array()) return;
  for (auto& row : electric_usage["devices"]) {
    if (!row.is_object()) continue;
    for (const char* k : kOptionalKeys) {
      if (!row.contains(k)) row[k] = nullptr;
    }
  }
}

}  // namespace

void ElectricUsageContributor::contribute(json& request_body) {
  json e = ledger_.with([](const HeatingTracker&, const ElectricTracker& electric) {
    return electric.payload(clock::unix_millis());
  });
  if (e.is_null()) return;
  strip_null_optionals(e);
  request_body["electricUsage"] = std::move(e);
}

void ElectricUsageContributor::on_committed(const json& sent_body) {
  if (!sent_body.contains("electricUsage")) return;
  json e = sent_body["electricUsage"];
  restore_null_optionals(e);
  ledger_.with([&](HeatingTracker&, ElectricTracker& electric) { electric.acknowledge(e); });
  ledger_.save();
}

}  // namespace dinodia::agent
