// The WebSocket side of the Home Assistant stand-in: the Supervisor's /core/api/websocket as a
// client of it sees Core (auth phase, ids, results, coalesced batches, slow-client limits).
//
// Real protocol: auth_required → auth within 10 s (access_token must be the supervisor token)
// → auth_ok / auth_invalid + disconnect; then commands with strictly increasing ids, batches
// (JSON arrays) handled element-wise, binary frames echoed back unchanged.
//
// Registry and automation commands as Core answers them (shapes and errors), from the state
// the REST side and POST /_fake/set share: config/{area,label,device,entity}_registry/list,
// config/entity_registry/list_for_display, config/entity_registry/remove,
// config/device_registry/remove (unknown_command with "device_remove_command": false, as Core
// before it), config/device_registry/remove_config_entry, automation/config; call_service and
// execute_script answer {"context", "response": null} without running anything; the removals
// answer `unauthorized` with "ws_admin": false (fake_ha.hpp).
//
// Test commands (all answer with a normal `result` unless noted):
//   fake/raw {"text": "..."}            sends `text` verbatim as a text frame, then the result
//   fake/big {"size": N}                result is {"data": "xxx…"} with N bytes of data
//   fake/flood {"count": C, "size": N}  C events of ~N bytes each, written as fast as the peer
//                                       reads (generated one by one, so the fake stays small)
//   fake/close {"code": 4001, "reason": "x"}  closes the connection with that code (no result)
//   fake/slow {"delay_ms": D}           result after D ms; other commands go on meanwhile
//   fake/fire_state_changed {"entity_id": "...", "state": "on"}  updates the state and sends a
//                                       state_changed event to every matching subscription
//   fake/received                       every message received after auth (all connections),
//                                       parsed; fake/received_raw: the raw text frames
//   fake/clear_received                 forgets both
//   fake/drop_all                       drop_all_websockets(): Core restarting
// A close frame received after auth is recorded as {"closed": code, "reason": "..."}.
// Each connection runs its own io_context on the listener's per-connection thread, so timers,
// slow replies and events pushed from other connections never block its reads.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "tests/fakes/fake_ha.hpp"

namespace dinodia::fakes {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;

constexpr auto kAuthTimeout = std::chrono::seconds(10);  // Core's AUTH_MESSAGE_TIMEOUT

class Connection;

std::mutex g_registry_mutex;
std::set<std::shared_ptr<Connection>> g_connections;
std::mutex g_raw_mutex;
std::vector<std::string> g_received_raw;

struct Outgoing {
  std::string data;
  bool binary = false;
};

// A command's result as Core writes it: {"id", "type", "success", then "result" or "error"},
// in that order (Core's messages are dicts serialised in insertion order, without spaces).
// nlohmann::json would sort the keys, so the frame is put together here; where a handler
// returns it as a json value it becomes one again.
struct CoreResult {
  std::string frame;
  std::string dump() const { return frame; }
  operator json() const { return json::parse(frame); }  // NOLINT(google-explicit-constructor)
};

CoreResult error_message(const json& id, const std::string& code, const std::string& message) {
  return {R"({"id":)" + id.dump() + R"(,"type":"result","success":false,"error":)" +
          json{{"code", code}, {"message", message}}.dump() + "}"};
}
CoreResult result_message(const json& id, const json& result) {
  return {R"({"id":)" + id.dump() + R"(,"type":"result","success":true,"result":)" + result.dump() +
          "}"};
}

// config/{entity,device}_registry/list: Core joins cached entries behind a prefix written by
// hand, with a space after "type": and after "result": (its entity and device registries).
// Anything but an array (a wrong shape set on purpose) is written as any other result.
CoreResult registry_list_message(const json& id, const json& list) {
  if (!list.is_array()) return result_message(id, list);
  std::string frame = R"({"id":)" + id.dump() + R"(,"type": "result","success":true,"result": [)";
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i > 0) frame += ',';
    frame += list[i].dump();
  }
  frame += "]}";
  return {std::move(frame)};
}

// Registries the fake answers with when the listener did not fill them: derived from the
// states, in the shapes Core's commands return.
json default_entity_registry(const json& states) {
  json list = json::array();
  int n = 0;
  if (states.is_array()) {
    for (const auto& s : states) {
      std::string entity_id = s.value("entity_id", "");
      if (entity_id.empty()) continue;
      ++n;
      list.push_back({{"area_id", n % 3 == 0 ? json("kitchen") : json(nullptr)},
                      {"categories", json::object()},
                      {"config_entry_id", "cfg" + std::to_string(n % 7)},
                      {"device_id", "dev" + std::to_string(n)},
                      {"disabled_by", nullptr},
                      {"entity_category", nullptr},
                      {"entity_id", entity_id},
                      {"has_entity_name", true},
                      {"hidden_by", nullptr},
                      {"icon", nullptr},
                      {"id", "reg" + std::to_string(n)},
                      {"labels", n % 5 == 0 ? json::array({"light"}) : json::array()},
                      {"name", nullptr},
                      {"options", json::object()},
                      {"original_name", entity_id},
                      {"platform", "demo"},
                      {"translation_key", nullptr},
                      {"unique_id", "uid-" + std::to_string(n)},
                      {"created_at", 1700000000.0},
                      {"modified_at", 1700000000.0}});
    }
  }
  if (list.empty()) {
    list.push_back({{"area_id", "kitchen"},
                    {"device_id", "dev1"},
                    {"disabled_by", nullptr},
                    {"entity_id", "light.kitchen"},
                    {"id", "reg1"},
                    {"labels", json::array()},
                    {"platform", "demo"},
                    {"unique_id", "uid-1"},
                    {"name", nullptr},
                    {"icon", nullptr},
                    {"hidden_by", nullptr},
                    {"entity_category", nullptr},
                    {"has_entity_name", true},
                    {"original_name", "Kitchen"},
                    {"translation_key", nullptr},
                    {"config_entry_id", "cfg1"},
                    {"categories", json::object()},
                    {"options", json::object()}});
  }
  return list;
}

json or_default(const json& value, json fallback) {
  return value.is_array() ? value : fallback;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket::native_handle_type fd, const tcp::endpoint::protocol_type& protocol,
             std::shared_ptr<FakeHaState> state)
      : ws_(ioc_), state_(std::move(state)), auth_timer_(ioc_) {
    ws_.next_layer().assign(protocol, fd);
  }

  void run(const beast::http::request<beast::http::string_body>& req) {
    ws_.auto_fragment(false);
    ws_.read_message_max(4 * 1024 * 1024);  // aiohttp's default, as Core
    beast::error_code ec;
    ws_.accept(req, ec);
    if (ec) return;
    state_->ws_connections_open.fetch_add(1);
    state_->ws_connections_total.fetch_add(1);
    count_ws_connection();
    send(json{{"type", "auth_required"}, {"ha_version", state_->ha_version}}.dump());
    auth_timer_.expires_after(kAuthTimeout);
    auth_timer_.async_wait([self = shared_from_this()](beast::error_code timer_ec) {
      if (!timer_ec && !self->authed_) {
        std::cerr << "fake_ha: Did not receive auth message within 10 seconds\n";
        self->drop();
      }
    });
    read();
    // A handler that throws (a test command or a /_fake/set value of the wrong JSON type) drops
    // this connection only; uncaught it would std::terminate the whole stand-in. run() may be
    // called again after an exception: the dropped socket's operations then finish with errors.
    for (;;) {
      try {
        ioc_.run();
        break;
      } catch (const std::exception& e) {
        std::cerr << "fake_ha: WebSocket handler failed, dropping the connection: " << e.what()
                  << "\n";
        drop();
      }
    }
    state_->ws_connections_open.fetch_sub(1);
  }

  // Any thread.
  void post_drop() {
    asio::post(ioc_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->drop();
    });
  }
  void post_event(const std::string& event_type, const json& event) {
    asio::post(ioc_, [weak = weak_from_this(), event_type, event] {
      auto self = weak.lock();
      if (!self || self->closing_) return;
      for (const auto& [id, type] : self->subscriptions_) {
        if (type == "*" || type == event_type) {
          self->send(json{{"id", id}, {"type", "event"}, {"event", event}}.dump());
        }
      }
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == websocket::error::closed && authed_) {
        // Recorded so tests can check close codes are relayed.
        record(json{{"closed", ws_.reason().code},
                    {"reason", std::string(ws_.reason().reason.c_str())}},
               std::nullopt);
      }
      drop();
      return;
    }
    const bool binary = ws_.got_binary();
    std::string data = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (!authed_) {
      if (!handle_auth(binary, data)) return;
    } else if (binary) {
      if (data.empty()) {  // Core: "Received invalid binary message."
        drop();
        return;
      }
      record(json{{"binary_size", data.size()}}, std::nullopt);
      send(std::move(data), true);
    } else {
      json parsed = json::parse(data, nullptr, false);
      record(parsed.is_discarded() ? json(data) : parsed, data);
      if (parsed.is_array()) {
        for (const auto& element : parsed) handle_command(element);
      } else if (!parsed.is_discarded()) {
        handle_command(parsed);
      } else {
        drop();  // Core: invalid JSON disconnects
        return;
      }
    }
    if (!closing_) read();
  }

  bool handle_auth(bool binary, const std::string& data) {
    json parsed = binary ? json() : json::parse(data, nullptr, false);
    if (binary || parsed.is_discarded() || !parsed.is_object()) {
      drop();  // "Received non-Text message / invalid JSON during auth phase"
      return false;
    }
    if (parsed.value("type", "") != "auth" || !parsed.contains("access_token") ||
        !parsed["access_token"].is_string()) {
      count_ws_auth(false);
      send(json{{"type", "auth_invalid"},
                {"message", "Auth message incorrectly formatted: expected access_token"}}
               .dump());
      close({websocket::close_code::normal});
      return false;
    }
    if (parsed["access_token"].get<std::string>() != state_->supervisor_token) {
      count_ws_auth(false);
      send(json{{"type", "auth_invalid"}, {"message", "Invalid access token or password"}}.dump());
      close({websocket::close_code::normal});
      return false;
    }
    count_ws_auth(true);
    authed_ = true;
    auth_timer_.cancel();
    send(json{{"type", "auth_ok"}, {"ha_version", state_->ha_version}}.dump());
    return true;
  }

  void record(json parsed, std::optional<std::string> raw) {
    {
      std::lock_guard lock(state_->mutex);
      state_->ws_received.push_back(std::move(parsed));
    }
    if (raw) {
      std::lock_guard lock(g_raw_mutex);
      g_received_raw.push_back(std::move(*raw));
    }
  }

  void handle_command(const json& msg) {
    if (!msg.is_object() || !msg.contains("id") || !msg["id"].is_number_integer() ||
        msg["id"].get<std::int64_t>() == 0 || !msg.contains("type") || !msg["type"].is_string()) {
      json id = msg.is_object() && msg.contains("id") ? msg["id"] : json(0);
      send(error_message(id, "invalid_format", "Message incorrectly formatted.").dump());
      return;
    }
    const auto id = msg["id"].get<std::int64_t>();
    if (id <= last_id_) {
      send(error_message(id, "id_reuse", "Identifier values have to increase.").dump());
      return;
    }
    last_id_ = id;
    const std::string type = msg["type"].get<std::string>();
    count_ws_command(type);
    if (type.ends_with("_registry/list")) {
      delay_next_send_ms_ = locked([&] { return state_->read_delay_ms; });
    } else if (type == "subscribe_events") {
      delay_next_send_ms_ = locked([&] { return state_->subscribe_delay_ms; });
    }

    if (type == "ping") {
      send(json{{"id", id}, {"type", "pong"}}.dump());
    } else if (type == "supported_features") {
      send(result_message(id, nullptr).dump());
    } else if (type == "get_states") {
      send(result_message(id, locked([&] { return or_default(state_->states, json::array()); }))
               .dump());
    } else if (type == "get_config") {
      send(result_message(id, {{"location_name", "Home"},
                               {"time_zone", "Europe/London"},
                               {"version", state_->ha_version},
                               {"state", "RUNNING"},
                               {"unit_system", {{"temperature", "°C"}}}})
               .dump());
    } else if (type == "config/area_registry/list") {
      send(result_message(id, locked([&] {
                            return or_default(state_->area_registry,
                                              json::array({{{"area_id", "kitchen"},
                                                            {"name", "Kitchen"},
                                                            {"aliases", json::array()},
                                                            {"floor_id", nullptr},
                                                            {"icon", nullptr},
                                                            {"labels", json::array()},
                                                            {"picture", nullptr}}}));
                          }))
               .dump());
    } else if (type == "config/label_registry/list") {
      send(result_message(id, locked([&] {
                            return or_default(state_->label_registry,
                                              json::array({{{"color", nullptr},
                                                            {"description", nullptr},
                                                            {"icon", nullptr},
                                                            {"label_id", "light"},
                                                            {"name", "Light"}}}));
                          }))
               .dump());
    } else if (type == "config/device_registry/list") {
      send(registry_list_message(id, locked([&] {
                                   // Set but not an array (POST /_fake/set): answered verbatim, a
                                   // registry of the wrong shape.
                                   return state_->device_registry.is_null()
                                              ? json::array()
                                              : state_->device_registry;
                                 }))
               .dump());
    } else if (type == "config/entity_registry/list") {
      send(registry_list_message(id, locked([&] {
                                   return or_default(state_->entity_registry,
                                                     default_entity_registry(state_->states));
                                 }))
               .dump());
    } else if (type == "config/entity_registry/list_for_display") {
      json entities = json::array();
      json registry = locked([&] {
        return or_default(state_->entity_registry, default_entity_registry(state_->states));
      });
      for (const auto& e : registry) {
        if (!e.value("disabled_by", json()).is_null()) continue;
        json compact = {{"ei", e.value("entity_id", "")}, {"pl", e.value("platform", "")}};
        if (e.contains("area_id") && !e["area_id"].is_null()) compact["ai"] = e["area_id"];
        if (e.contains("device_id") && !e["device_id"].is_null()) compact["di"] = e["device_id"];
        if (e.contains("labels") && !e["labels"].empty()) compact["lb"] = e["labels"];
        entities.push_back(std::move(compact));
      }
      send(result_message(id, {{"entity_categories", {{"0", "config"}, {"1", "diagnostic"}}},
                               {"entities", std::move(entities)}})
               .dump());
    } else if (type == "config/entity_registry/remove") {
      send(remove_entity(id, msg).dump());
    } else if (type == "config/device_registry/remove" &&
               locked_flag([&] { return state_->device_remove_command; })) {
      send(remove_device(id, msg, std::nullopt).dump());
    } else if (type == "config/device_registry/remove_config_entry") {
      send(remove_device(id, msg, std::string("config_entry_id")).dump());
    } else if (type == "automation/config") {
      send(automation_config(id, msg).dump());
    } else if (type == "subscribe_events") {
      subscriptions_[id] = msg.value("event_type", std::string("*"));
      send(result_message(id, nullptr).dump());
    } else if (type == "unsubscribe_events") {
      auto sub = msg.value("subscription", std::int64_t{0});
      if (subscriptions_.erase(sub) == 0) {
        send(error_message(id, "not_found", "Subscription not found.").dump());
      } else {
        send(result_message(id, nullptr).dump());
      }
    } else if (type == "subscribe_entities") {
      // Core's compressed state stream: a result, then one event with every entity under "a"
      // (s = state, a = attributes, c = context id, lc = last_changed as epoch seconds).
      send(result_message(id, nullptr).dump());
      json added = json::object();
      for (const auto& st : locked([&] { return or_default(state_->states, json::array()); })) {
        added[st.value("entity_id", "")] = {
            {"s", st.value("state", "")},
            {"a", st.value("attributes", json::object())},
            {"c", st.value("context", json::object()).value("id", "")},
            {"lc", 1700000000.0}};  // a number: the JS client passes it to Date()
      }
      send(json{{"id", id}, {"type", "event"}, {"event", {{"a", added}}}}.dump());
    } else if (type == "call_service" || type == "execute_script") {
      // execute_script answers as call_service does: the context and the script's response.
      send(result_message(
               id,
               {{"context", {{"id", "fake-context"}, {"parent_id", nullptr}, {"user_id", nullptr}}},
                {"response", nullptr}})
               .dump());
    } else if (type == "zha/devices") {
      const json zha = locked([&] { return state_->zha; });
      auto answer = [self = shared_from_this(), id, zha] {
        if (zha.contains("devices_error") && zha["devices_error"].is_object()) {
          self->send(error_message(id, zha["devices_error"].value("code", "unknown_error"),
                                   zha["devices_error"].value("message", ""))
                         .dump());
        } else if (zha.contains("devices")) {
          self->send(result_message(id, zha["devices"]).dump());
        } else {
          self->send(error_message(id, "unknown_command", "Unknown command.").dump());
        }
      };
      if (int delay = zha.value("devices_delay_ms", 0); delay > 0) {
        auto timer = std::make_shared<asio::steady_timer>(ioc_);
        timer->expires_after(std::chrono::milliseconds(delay));
        timer->async_wait([timer, answer](beast::error_code ec) {
          if (!ec) answer();
        });
      } else {
        answer();
      }
    } else if (type == "fake/raw") {
      send(msg.value("text", std::string()));
      send(result_message(id, nullptr).dump());
    } else if (type == "fake/big") {
      auto size = msg.value("size", std::size_t{0});
      send(result_message(id, {{"data", std::string(size, 'x')}}).dump());
    } else if (type == "fake/flood") {
      flood_id_ = id;
      flood_remaining_ = msg.value("count", std::size_t{0});
      flood_size_ = msg.value("size", std::size_t{1024});
      pump();
    } else if (type == "fake/close") {
      auto code = msg.value("code", 1000);
      close(websocket::close_reason(static_cast<websocket::close_code>(code),
                                    msg.value("reason", std::string())));
    } else if (type == "fake/slow") {
      auto timer = std::make_shared<asio::steady_timer>(ioc_);
      timer->expires_after(std::chrono::milliseconds(msg.value("delay_ms", 1000)));
      timer->async_wait([self = shared_from_this(), timer, id](beast::error_code ec) {
        if (!ec) self->send(result_message(id, "slow done").dump());
      });
    } else if (type == "fake/drop_all") {
      send(result_message(id, nullptr).dump());
      drop_all_websockets();
    } else if (type == "fake/fire_state_changed") {
      fire_state_changed(msg.value("entity_id", std::string("light.kitchen")),
                         msg.value("state", std::string("on")));
      send(result_message(id, nullptr).dump());
    } else if (type == "fake/received") {
      send(result_message(id, locked([&] { return json(state_->ws_received); })).dump());
    } else if (type == "fake/received_raw") {
      std::lock_guard lock(g_raw_mutex);
      send(result_message(id, json(g_received_raw)).dump());
    } else if (type == "fake/clear_received") {
      locked([&] {
        state_->ws_received.clear();
        return 0;
      });
      {
        std::lock_guard lock(g_raw_mutex);
        g_received_raw.clear();
      }
      send(result_message(id, nullptr).dump());
    } else {
      send(error_message(id, "unknown_command", "Unknown command.").dump());
    }
  }

  // A required string key of a command's schema, checked as voluptuous does before the handler
  // runs (so before require_admin): the invalid_format error with its humanized message when it
  // is missing or not a string, nullopt when it is fine.
  static std::optional<json> schema_error(std::int64_t id, const json& msg, const char* key) {
    if (!msg.contains(key)) {
      return error_message(
          id, "invalid_format",
          std::string("required key not provided @ data['") + key + "']. Got None");
    }
    if (!msg[key].is_string()) {
      return error_message(id, "invalid_format",
                           std::string("expected str for dictionary value @ data['") + key +
                               "']. Got " + msg[key].dump());
    }
    return std::nullopt;
  }

  // config/entity_registry/remove (require_admin): not_found "Entity not found", else the entry
  // leaves the registry and the result is null.
  json remove_entity(std::int64_t id, const json& msg) {
    std::lock_guard lock(state_->mutex);
    if (auto bad = schema_error(id, msg, "entity_id")) return *bad;
    const std::string entity_id = msg["entity_id"].get<std::string>();
    if (entity_id.find('.') == std::string::npos) {
      return error_message(id, "invalid_format",
                           "Entity ID " + entity_id +
                               " is an invalid entity ID for dictionary value @ data['entity_id']. "
                               "Got '" +
                               entity_id + "'");
    }
    if (!state_->ws_admin) return error_message(id, "unauthorized", "Unauthorized");
    json registry = or_default(state_->entity_registry, default_entity_registry(state_->states));
    for (auto it = registry.begin(); it != registry.end(); ++it) {
      if (it->is_object() && it->value("entity_id", "") == entity_id) {
        registry.erase(it);
        state_->entity_registry = std::move(registry);
        return result_message(id, nullptr);
      }
    }
    return error_message(id, "not_found", "Entity not found");
  }

  // config/device_registry/remove {device_id} and, on Core before it, remove_config_entry
  // {config_entry_id, device_id} (`entry_key`); both require_admin. An unknown device is Core's
  // HomeAssistantError "Unknown device" (code home_assistant_error); remove_config_entry drops
  // the one entry and the device with its last.
  json remove_device(std::int64_t id, const json& msg, std::optional<std::string> entry_key) {
    std::lock_guard lock(state_->mutex);
    if (entry_key) {
      if (auto bad = schema_error(id, msg, entry_key->c_str())) return *bad;
    }
    if (auto bad = schema_error(id, msg, "device_id")) return *bad;
    if (!state_->ws_admin) return error_message(id, "unauthorized", "Unauthorized");
    json& devices = state_->device_registry;
    if (!devices.is_array()) devices = json::array();
    const std::string device_id = msg["device_id"].get<std::string>();
    for (auto it = devices.begin(); it != devices.end(); ++it) {
      if (!it->is_object() || it->value("id", "") != device_id) continue;
      if (entry_key) {
        const std::string entry = msg[*entry_key].get<std::string>();
        json& entries = (*it)["config_entries"];
        if (!entries.is_array()) entries = json::array();
        auto found = std::find(entries.begin(), entries.end(), json(entry));
        if (found == entries.end()) {
          return error_message(id, "home_assistant_error", "Config entry not in device");
        }
        entries.erase(found);
        if (!entries.empty()) return result_message(id, nullptr);
      }
      devices.erase(it);
      return result_message(id, nullptr);
    }
    return error_message(id, "home_assistant_error", "Unknown device");
  }

  // automation/config {entity_id}: {"config": <raw config>}, the stored one for an automation
  // written over REST, else what its state says (a YAML automation); not_found
  // "Entity not found" for an entity that is no automation.
  json automation_config(std::int64_t id, const json& msg) {
    std::lock_guard lock(state_->mutex);
    if (auto bad = schema_error(id, msg, "entity_id")) return *bad;
    const std::string entity_id = msg["entity_id"].get<std::string>();
    if (entity_id.rfind("automation.", 0) == 0 && state_->states.is_array()) {
      for (const auto& st : state_->states) {
        if (!st.is_object() || st.value("entity_id", "") != entity_id) continue;
        const json attrs = st.value("attributes", json::object());
        const json key = attrs.is_object() ? attrs.value("id", json()) : json();
        if (key.is_string() && state_->automations.is_object() &&
            state_->automations.contains(key.get<std::string>())) {
          return result_message(id, {{"config", state_->automations[key.get<std::string>()]}});
        }
        json config = {
            {"alias", attrs.is_object() ? attrs.value("friendly_name", entity_id) : entity_id},
            {"triggers", json::array()},
            {"actions", json::array()}};
        if (key.is_string()) config["id"] = key;
        return result_message(id, {{"config", std::move(config)}});
      }
    }
    return error_message(id, "not_found", "Entity not found");
  }

  template <typename F>
  bool locked_flag(F&& f) {
    std::lock_guard lock(state_->mutex);
    return f();
  }

  void fire_state_changed(const std::string& entity_id, const std::string& new_state) {
    json old_state = nullptr;
    json updated = {{"entity_id", entity_id},
                    {"state", new_state},
                    {"attributes", json::object()},
                    {"last_changed", "2026-01-01T00:00:00+00:00"},
                    {"last_reported", "2026-01-01T00:00:00+00:00"},
                    {"last_updated", "2026-01-01T00:00:00+00:00"},
                    {"context", {{"id", "ctx"}, {"parent_id", nullptr}, {"user_id", nullptr}}}};
    {
      std::lock_guard lock(state_->mutex);
      if (!state_->states.is_array()) state_->states = json::array();
      bool found = false;
      for (auto& s : state_->states) {
        if (s.value("entity_id", "") == entity_id) {
          old_state = s;
          updated["attributes"] = s.value("attributes", json::object());
          s = updated;
          found = true;
        }
      }
      if (!found) state_->states.push_back(updated);
    }
    json event = {
        {"event_type", "state_changed"},
        {"data", {{"entity_id", entity_id}, {"old_state", old_state}, {"new_state", updated}}},
        {"origin", "LOCAL"},
        {"time_fired", "2026-01-01T00:00:00+00:00"},
        {"context", {{"id", "ctx"}, {"parent_id", nullptr}, {"user_id", nullptr}}}};
    std::lock_guard lock(g_registry_mutex);
    for (const auto& connection : g_connections) connection->post_event("state_changed", event);
  }

  template <typename F>
  json locked(F&& f) {
    std::lock_guard lock(state_->mutex);
    return f();
  }

  void send(std::string data, bool binary = false) {
    if (closing_) return;
    if (const long delay = std::exchange(delay_next_send_ms_, 0); delay > 0) {
      auto timer = std::make_shared<asio::steady_timer>(ioc_);
      timer->expires_after(std::chrono::milliseconds(delay));
      timer->async_wait([self = shared_from_this(), timer, data = std::move(data),
                         binary](beast::error_code ec) mutable {
        if (!ec) self->send(std::move(data), binary);
      });
      return;
    }
    queue_.push_back({std::move(data), binary});
    pump();
  }

  void pump() {
    if (writing_ || closing_) return;
    if (queue_.empty() && flood_remaining_ > 0) {
      --flood_remaining_;
      json event = {{"id", flood_id_},
                    {"type", "event"},
                    {"event", {{"n", flood_remaining_}, {"pad", std::string(flood_size_, 'f')}}}};
      queue_.push_back({event.dump(), false});
      if (flood_remaining_ == 0) queue_.push_back({result_message(flood_id_, nullptr).dump()});
    }
    if (queue_.empty()) return;
    writing_ = true;
    ws_.text(!queue_.front().binary);
    ws_.async_write(asio::buffer(queue_.front().data),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      self->queue_.pop_front();
                      if (ec) {
                        self->drop();
                        return;
                      }
                      self->pump();
                    });
  }

  void close(websocket::close_reason reason) {
    if (closing_) return;
    closing_ = true;
    auto do_close = [self = shared_from_this(), reason] {
      self->ws_.async_close(reason, [self](beast::error_code) { self->drop(); });
    };
    if (writing_) {
      // Let the frame in flight (e.g. auth_invalid) finish first.
      auto timer = std::make_shared<asio::steady_timer>(ioc_);
      poll_then(timer, do_close);
    } else {
      do_close();
    }
  }

  template <typename F>
  void poll_then(std::shared_ptr<asio::steady_timer> timer, F f) {
    timer->expires_after(std::chrono::milliseconds(5));
    timer->async_wait([self = shared_from_this(), timer, f](beast::error_code) {
      if (self->writing_) {
        self->poll_then(timer, f);
      } else {
        f();
      }
    });
  }

  // Drops the TCP connection at once, as a Core restart does.
  void drop() {
    closing_ = true;
    beast::error_code ignored;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    ws_.next_layer().close(ignored);
    auth_timer_.cancel();
  }

  asio::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  std::shared_ptr<FakeHaState> state_;
  beast::flat_buffer buffer_;
  asio::steady_timer auth_timer_;
  std::deque<Outgoing> queue_;
  bool writing_ = false;
  bool closing_ = false;
  bool authed_ = false;
  std::int64_t last_id_ = 0;
  // read_delay_ms (registry lists) or subscribe_delay_ms (subscribe_events) for the answer
  // being sent
  long delay_next_send_ms_ = 0;
  std::map<std::int64_t, std::string> subscriptions_;
  std::int64_t flood_id_ = 0;
  std::size_t flood_remaining_ = 0;
  std::size_t flood_size_ = 0;
};

}  // namespace

void serve_websocket(tcp::socket socket, beast::http::request<beast::http::string_body> req,
                     beast::flat_buffer /*buffer: a client sends nothing before the 101*/,
                     std::shared_ptr<FakeHaState> state) {
  beast::error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return;
  auto fd = socket.release(ec);
  if (ec) return;
  auto connection = std::make_shared<Connection>(fd, protocol, std::move(state));
  {
    std::lock_guard lock(g_registry_mutex);
    g_connections.insert(connection);
  }
  connection->run(req);
  std::lock_guard lock(g_registry_mutex);
  g_connections.erase(connection);
}

void broadcast_event(const std::string& event_type, const json& event) {
  std::lock_guard lock(g_registry_mutex);
  for (const auto& connection : g_connections) connection->post_event(event_type, event);
}

void drop_all_websockets() {
  std::lock_guard lock(g_registry_mutex);
  for (const auto& connection : g_connections) connection->post_drop();
}

}  // namespace dinodia::fakes
