#include "agent/usage_registry_fetch.hpp"

#include <memory>
#include <utility>

#include "common/log.hpp"
#include "telemetry/electric_selection.hpp"
#include "telemetry/heating_selection.hpp"

namespace dinodia::agent {

using json = nlohmann::json;

void fetch_heating_selection(const WsRequest& ws, std::vector<std::string> labels, std::size_t cap,
                             std::function<void(std::optional<HeatingSelection>)> done) {
  auto failed = [](const std::string& error) {
    log::warn("Heating usage label registry refresh failed",
              log::Fields().add("error", error.empty() ? "unexpected shape" : error));
  };
  ws("config/label_registry/list", [ws, labels = std::move(labels), cap, done = std::move(done),
                                    failed](const std::string& e, const json& registry) {
    if (!e.empty() || !registry.is_array()) {
      failed(e);
      return done(std::nullopt);
    }
    std::vector<std::string> wanted_names;
    auto label_ids = telemetry::heating_label_ids(registry, labels, wanted_names);
    if (label_ids.empty()) {
      log::warn("Heating usage label registry returned no matching labels",
                log::Fields().add("wanted", json(wanted_names).dump()));
      return done(HeatingSelection{});
    }
    ws("config/entity_registry/list_for_display",
       [label_ids = std::move(label_ids), cap, done, failed](const std::string& e2, json reg) {
         if (!e2.empty() || !reg.is_object() || !reg.value("entities", json()).is_array()) {
           failed(e2);
           return done(std::nullopt);
         }
         HeatingSelection selection = telemetry::heating_selection(reg["entities"], label_ids, cap);
         log::info("Heating usage label registry refreshed",
                   log::Fields().add("entities", selection.size()));
         done(std::move(selection));
       });
  });
}

void fetch_electric_selection(const WsRequest& ws, std::string label,
                              std::function<void(std::optional<ElectricSelection>)> done) {
  struct Reads {
    telemetry::HaRegistries registries;
    std::string error;
    int remaining = 4;
  };
  auto reads = std::make_shared<Reads>();
  auto finish = [reads, label = std::move(label), done = std::move(done)]() {
    if (--reads->remaining > 0) return;
    if (!reads->error.empty()) {
      log::warn("Electric usage registry refresh failed", log::Fields().add("error", reads->error));
      return done(std::nullopt);
    }
    done(telemetry::electric_selection(reads->registries, label));
  };
  auto get = [&](const char* type, json telemetry::HaRegistries::*slot) {
    ws(type, [reads, slot, finish](const std::string& e, json v) {
      if (!e.empty() && reads->error.empty()) reads->error = e;
      if (e.empty() && !v.is_array() && reads->error.empty()) reads->error = "unexpected shape";
      reads->registries.*slot = std::move(v);
      finish();
    });
  };
  get("config/label_registry/list", &telemetry::HaRegistries::labels);
  get("config/entity_registry/list", &telemetry::HaRegistries::entities);
  get("config/device_registry/list", &telemetry::HaRegistries::devices);
  get("config/area_registry/list", &telemetry::HaRegistries::areas);
}

}  // namespace dinodia::agent
