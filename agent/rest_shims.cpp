#include "agent/rest_shims.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "agent/rest_shim_rules.hpp"
#include "common/log.hpp"
#include "ha_client/ws_commands_once.hpp"

namespace dinodia::agent {

namespace {

using json = nlohmann::json;
using ha_bridge::LocalRequest;
using ha_bridge::LocalResponse;
using ha_bridge::Responder;
using ha_client::WsResult;

// Each WebSocket exchange, as the Zigbee routes' one-shot commands (the apps give up after
// 5-10 s; the bridge's own upstream timeout still bounds the whole request).
constexpr auto kCommandTimeout = std::chrono::milliseconds(15000);
constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024;  // {"entity_id": ...} is tiny

struct Shared {
  ha_client::HaClientConfig ha;
  std::function<boost::asio::io_context&()> io;
};
using SharedPtr = std::shared_ptr<const Shared>;
using Results = std::vector<WsResult>;

// Home Assistant could not be asked at all: logged (no credential is ever in these errors),
// answered like the relay's unreachable Home Assistant.
LocalResponse unreachable(const char* path, const std::string& error) {
  log::warn("REST shim could not reach Home Assistant",
            log::Fields().add("path", path).add("detail", error));
  return upstream_error_response();
}

LocalResponse refused(const char* path, const WsResult& failed) {
  log::info("REST shim: Home Assistant refused the command",
            log::Fields().add("path", path).add("code", failed.code).add("detail", failed.message));
  return ha_error_response(failed);
}

void run(const SharedPtr& s, std::vector<json> commands,
         std::function<void(std::string, Results)> done) {
  ha_client::ws_commands_once(s->io(), s->ha, std::move(commands), kCommandTimeout,
                              std::move(done));
}

std::vector<json> one(json command) {
  std::vector<json> commands;
  commands.push_back(std::move(command));
  return commands;
}

// GET /api/config/{label,device,entity}_registry/list: Home Assistant's result array as is.
ha_bridge::LocalHandler list(const SharedPtr& s, const char* path, const char* command) {
  return [s, path, command](const LocalRequest&, Responder respond) {
    run(s, one({{"type", command}}),
        [path, respond = std::move(respond)](const std::string& error, const Results& results) {
          if (!error.empty()) return respond(unreachable(path, error));
          if (!results[0].success) return respond(refused(path, results[0]));
          respond(json_response(results[0].result.dump()));
        });
  };
}

// POST /api/config/entity_registry/remove {"entity_id"}.
void remove_entity(const SharedPtr& s, const LocalRequest& req, Responder respond) {
  static constexpr const char* kPath = "/api/config/entity_registry/remove";
  auto command = remove_command(req.body, "config/entity_registry/remove", "entity_id");
  if (req.body_too_large || !command) return respond(bad_body_response(req.body_too_large));
  run(s, one(std::move(*command)),
      [respond = std::move(respond)](const std::string& error, const Results& results) {
        if (!error.empty()) return respond(unreachable(kPath, error));
        if (!results[0].success) return respond(refused(kPath, results[0]));
        respond(removed_response());
      });
}

// Home Assistant before config/device_registry/remove: the device leaves the registry when it
// is removed from each of its config entries (config/device_registry/remove_config_entry).
void remove_device_per_config_entry(const SharedPtr& s, json device_id, Responder respond) {
  static constexpr const char* kPath = "/api/config/device_registry/remove";
  run(s, one({{"type", "config/device_registry/list"}}),
      [s, device_id = std::move(device_id), respond = std::move(respond)](
          const std::string& error, const Results& listed) mutable {
        if (!error.empty()) return respond(unreachable(kPath, error));
        if (!listed[0].success) return respond(refused(kPath, listed[0]));
        const auto entries = device_config_entries(listed[0].result, device_id);
        if (!entries) {
          return respond(refused(kPath, {false, json(), "not_found", "Unknown device"}));
        }
        if (entries->empty()) {
          return respond(refused(kPath, {false, json(), "not_supported",
                                         "Config entry does not support device removal"}));
        }
        std::vector<json> commands;
        for (const auto& entry : *entries) {
          commands.push_back({{"type", "config/device_registry/remove_config_entry"},
                              {"config_entry_id", entry},
                              {"device_id", device_id}});
        }
        run(s, std::move(commands),
            [respond = std::move(respond)](const std::string& remove_error,
                                           const Results& removed) {
              if (!remove_error.empty()) return respond(unreachable(kPath, remove_error));
              for (const auto& r : removed) {
                if (!r.success) return respond(refused(kPath, r));
              }
              respond(removed_response());
            });
      });
}

// POST /api/config/device_registry/remove {"device_id"}.
void remove_device(const SharedPtr& s, const LocalRequest& req, Responder respond) {
  static constexpr const char* kPath = "/api/config/device_registry/remove";
  auto command = remove_command(req.body, "config/device_registry/remove", "device_id");
  if (req.body_too_large || !command) return respond(bad_body_response(req.body_too_large));
  const json device_id = command->value("device_id", json());
  run(s, one(std::move(*command)),
      [s, device_id, respond = std::move(respond)](const std::string& error,
                                                   const Results& results) mutable {
        if (!error.empty()) return respond(unreachable(kPath, error));
        if (results[0].success) return respond(removed_response());
        if (results[0].code == "unknown_command") {
          return remove_device_per_config_entry(s, device_id, std::move(respond));
        }
        respond(refused(kPath, results[0]));
      });
}

// GET /api/config/automation: every automation's config, as the apps' fallback reads it.
void list_automations(const SharedPtr& s, const LocalRequest&, Responder respond) {
  static constexpr const char* kPath = "/api/config/automation";
  run(s, one({{"type", "get_states"}}),
      [s, respond = std::move(respond)](const std::string& error, const Results& states) mutable {
        if (!error.empty()) return respond(unreachable(kPath, error));
        if (!states[0].success) return respond(refused(kPath, states[0]));
        auto ids = std::make_shared<const std::vector<std::string>>(
            automation_entity_ids(states[0].result));
        if (ids->empty()) return respond(json_response("[]"));
        std::vector<json> commands;
        for (const auto& id : *ids) {
          commands.push_back({{"type", "automation/config"}, {"entity_id", id}});
        }
        run(s, std::move(commands),
            [ids, respond = std::move(respond)](const std::string& config_error,
                                                const Results& configs) {
              if (!config_error.empty()) return respond(unreachable(kPath, config_error));
              const AutomationList list = automation_list(*ids, configs);
              if (list.failed) return respond(refused(kPath, *list.failed));
              respond(json_response(list.list.dump()));
            });
      });
}

ha_bridge::LocalRoute shim(const char* method, const char* path, ha_bridge::LocalHandler handler) {
  ha_bridge::LocalRoute route;
  route.method = method;
  route.pathname = path;
  route.handler = std::move(handler);
  route.max_body_bytes = kMaxBodyBytes;
  route.ha_rest_shim = true;
  return route;
}

}  // namespace

std::vector<ha_bridge::LocalRoute> rest_shim_routes(ha_client::HaClientConfig ha,
                                                    std::function<boost::asio::io_context&()> io) {
  auto s = std::make_shared<const Shared>(Shared{std::move(ha), std::move(io)});
  auto bind = [s](void (*f)(const SharedPtr&, const LocalRequest&, Responder)) {
    return [s, f](const LocalRequest& req, Responder respond) { f(s, req, std::move(respond)); };
  };
  std::vector<ha_bridge::LocalRoute> routes;
  routes.push_back(shim("GET", "/api/config/label_registry/list",
                        list(s, "/api/config/label_registry/list", "config/label_registry/list")));
  routes.push_back(
      shim("GET", "/api/config/device_registry/list",
           list(s, "/api/config/device_registry/list", "config/device_registry/list")));
  routes.push_back(
      shim("GET", "/api/config/entity_registry/list",
           list(s, "/api/config/entity_registry/list", "config/entity_registry/list")));
  routes.push_back(shim("POST", "/api/config/entity_registry/remove", bind(remove_entity)));
  routes.push_back(shim("POST", "/api/config/device_registry/remove", bind(remove_device)));
  routes.push_back(shim("GET", "/api/config/automation", bind(list_automations)));
  return routes;
}

}  // namespace dinodia::agent
