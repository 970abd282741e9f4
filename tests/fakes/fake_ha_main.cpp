// fake_ha: listener, Supervisor + Core REST side and test-control endpoints (see fake_ha.hpp).
// One thread per connection, Beast synchronous I/O: simple and robust for tests.
//
// REST (all under /core, Bearer <supervisor token> required, 502 while core is "stopped"):
//   GET  /core/api/                       {"message":"API running."}
//   GET  /core/api/states                 array of N states (~200 KB for 300)
//        ?slow_ms=M                       chunked, 8 chunks, M ms apart (streaming tests)
//   GET  /core/api/states/<id>            object or 404 {"message":"Entity not found."}
//   POST /core/api/services/<d>/<s>       200 [] ; ?delay_ms=M answers after M ms (the 40 s
//                                         blinds script in miniature); a client that closes
//                                         meanwhile is noticed and counted as "cancelled"
//   POST /core/api/template               text/plain JSON array (entity_id, area, device, labels;
//                                         device_id null for sun., zone., person., ...)
//   GET  /core/api/config                 core config; /core/api/config/automation/config/<id>
//                                         GET/POST/DELETE (a POST adds the automation.* state, a
//                                         DELETE drops it, as Core's reload does);
//                                         POST config/script/config/<id> (200, nothing kept);
//                                         config_entries/flow POST/DELETE;
//                                         POST config/core/check_config {"result":"valid",...};
//                                         GET config/config_entries/entry (the config entries)
//   GET  /core/api/camera_proxy/<id>      image/jpeg, ?size=N bytes (default 256 KiB),
//                                         deterministic; camera.broken dies mid-body;
//                                         ?pause_after_header_ms=M sends the header alone first;
//                                         ?pause_inside_header_ms=M pauses inside a field line
//   GET  /network/info                    Supervisor envelope {result, data}; delayed on request
//                                         (network_info_delay in fake_ha.hpp)
//   the reads above (/api/, /api/states*, /api/config, POST /api/template) are delayed by
//   read_delay_ms when set (fake_ha.hpp)
//   anything else under /core/api         404 "404: Not Found"
// Control (no auth): GET /_fake/requests, GET /_fake/stats, POST /_fake/reset,
//   POST /_fake/stats/reset (zeroes the "counts" of /_fake/stats: fake_ha_stats.cpp),
//   POST /_fake/core?running=0|1,
//   POST /_fake/fault?mode=M&count=N&path=P   transport faults for the next N requests (default
//        1; -1 = until mode=none) whose path starts with P (default /core/api):
//        reset_before_status  TCP RST (SO_LINGER 0) right after the request, not one byte sent
//        reset_mid_body       status line, headers and half the declared body, then a TCP RST
//        ws_502               a WebSocket upgrade gets the Supervisor's 502 (Core starting)
//        none                 clears the fault. /_fake/stats counts them as faults_injected.
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/detached_thread.hpp"
#include "tests/fakes/fake_ha.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace dinodia::fakes {
namespace {

struct Counters {
  std::atomic<int> inflight{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> completed_delayed{0};
  std::atomic<int> connections_total{0};
  std::atomic<long> requests_total{0};  // every /core/* REST request recorded
};
Counters g_counters;

// Injected transport faults (POST /_fake/fault).
struct Fault {
  std::mutex mutex;
  std::string mode = "none";
  int remaining = 0;  // -1: until cleared
  std::string path_prefix = "/core/api";
  std::atomic<long> injected{0};
};
Fault g_fault;

// The fault to apply to this request ("" for none); consumes one of its count.
std::string take_fault(const std::string& path, bool websocket) {
  std::lock_guard<std::mutex> lock(g_fault.mutex);
  if (g_fault.mode == "none" || g_fault.remaining == 0) return {};
  if ((g_fault.mode == "ws_502") != websocket) return {};
  if (path.rfind(g_fault.path_prefix, 0) != 0) return {};
  if (g_fault.remaining > 0) --g_fault.remaining;
  ++g_fault.injected;
  return g_fault.mode;
}

// Closing with a zero linger time makes the kernel send RST instead of FIN.
void reset_connection(tcp::socket& socket) {
  linger immediate{1, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_LINGER, &immediate, sizeof immediate);
  beast::error_code ignored;
  socket.close(ignored);
}

std::map<std::string, std::string> parse_query(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    out[std::string(pair.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
}

std::string path_of(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

long query_long(const std::map<std::string, std::string>& q, const std::string& key, long def) {
  auto it = q.find(key);
  if (it == q.end() || it->second.empty()) return def;
  try {
    return std::stol(it->second);
  } catch (...) {
    return def;
  }
}

json make_states(int n) {
  static const char* kDomains[] = {"light", "switch", "sensor", "climate", "cover", "camera"};
  json states = json::array();
  for (int i = 0; i < n; ++i) {
    const std::string domain = kDomains[i % 6];
    const std::string id = domain + ".device_" + std::to_string(i);
    json attributes = {{"friendly_name", "Device " + std::to_string(i) + " in the living room"},
                       {"supported_features", i % 64},
                       {"icon", "mdi:lightbulb"},
                       {"device_class", domain == "sensor" ? "temperature" : "none"},
                       {"unit_of_measurement", domain == "sensor" ? "°C" : ""},
                       {"color_mode", "brightness"},
                       {"supported_color_modes", json::array({"brightness", "color_temp"})},
                       {"brightness", (i * 7) % 256}};
    states.push_back({{"entity_id", id},
                      {"state", i % 2 ? "on" : "off"},
                      {"attributes", attributes},
                      {"last_changed", "2026-11-24T10:00:00.000000+00:00"},
                      {"last_reported", "2026-11-24T10:00:00.000000+00:00"},
                      {"last_updated", "2026-11-24T10:00:00.000000+00:00"},
                      {"context",
                       {{"id", "01JABCDEFGHJKMNPQRSTVWXYZ" + std::to_string(i)},
                        {"parent_id", nullptr},
                        {"user_id", nullptr}}}});
  }
  return states;
}

// As Core's slugify for an automation's entity id: lower case, anything else than a-z0-9 one '_'.
std::string slugify(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "unnamed" : out;
}

// GET /api/config/config_entries/entry: one entry, in the fields Core's entry list gives.
json config_entries() {
  return json::array({{{"created_at", 1700000000.0},
                       {"disabled_by", nullptr},
                       {"domain", "demo"},
                       {"entry_id", "cfg1"},
                       {"error_reason_translation_key", nullptr},
                       {"error_reason_translation_placeholders", nullptr},
                       {"modified_at", 1700000000.0},
                       {"num_subentries", 0},
                       {"pref_disable_new_entities", false},
                       {"pref_disable_polling", false},
                       {"reason", nullptr},
                       {"source", "user"},
                       {"state", "loaded"},
                       {"supported_subentry_types", json::object()},
                       {"supports_options", false},
                       {"supports_reconfigure", false},
                       {"supports_remove_device", true},
                       {"supports_unload", true},
                       {"title", "Demo"}}});
}

std::string camera_bytes(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 31 + 7) & 0xFF);
  if (size >= 4) {
    out[0] = static_cast<char>(0xFF);
    out[1] = static_cast<char>(0xD8);
    out[size - 2] = static_cast<char>(0xFF);
    out[size - 1] = static_cast<char>(0xD9);
  }
  return out;
}

bool peer_closed(tcp::socket& socket) {
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

using Request = http::request<http::string_body>;

class Handler {
 public:
  Handler(tcp::socket& socket, std::shared_ptr<FakeHaState> state)
      : socket_(socket), state_(std::move(state)) {}

  // Returns false when the connection must close.
  bool handle(const Request& req) {
    const std::string path = path_of(req.target());
    const auto query = parse_query(req.target());
    if (path.rfind("/_fake/", 0) == 0) return control(req, path, query);

    record(req);
    count_http_request(req.target());
    if (path.rfind("/core/", 0) == 0 || path == "/network/info") {
      if (!authorised(req)) {
        return send(req, 401, "text/plain; charset=utf-8", "401: Unauthorized");
      }
    }
    if (path == "/network/info") {
      json info;
      long delay = 0;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        info = state_->network_info;
        if (state_->network_info_delays != 0) {
          delay = state_->network_info_delay_ms;
          if (state_->network_info_delays > 0) --state_->network_info_delays;
        }
      }
      if (delay > 0 && !wait_unless_client_leaves(std::chrono::milliseconds(delay))) return false;
      return send(req, 200, "application/json", json({{"result", "ok"}, {"data", info}}).dump());
    }
    if (path.rfind("/core/api", 0) != 0) return send(req, 404, "text/plain", "404: Not Found");
    if (!state_->core_running.load()) return send(req, 502, "text/plain", "502: Bad Gateway");
    return core_api(req, path.substr(5), query);
  }

 private:
  bool authorised(const Request& req) {
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return false;
    std::string_view value = it->value();
    auto space = value.rfind(' ');  // the Supervisor reads the last word
    std::string_view token = space == std::string_view::npos ? value : value.substr(space + 1);
    return token == state_->supervisor_token;
  }

  void record(const Request& req) {
    RecordedRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
    r.body = req.body();
    g_counters.requests_total.fetch_add(1);
    std::lock_guard<std::mutex> lock(state_->mutex);
    // Bounded so a benchmark's hundreds of thousands of requests do not grow the stand-in; tests
    // look at far fewer than this.
    if (state_->requests.size() >= 20000) {
      state_->requests.erase(state_->requests.begin(), state_->requests.begin() + 10000);
    }
    state_->requests.push_back(std::move(r));
  }

  bool control(const Request& req, const std::string& path,
               const std::map<std::string, std::string>& query) {
    if (path == "/_fake/requests") {
      json list = json::array();
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        for (const auto& r : state_->requests) {
          json headers = json::array();
          for (const auto& [k, v] : r.headers) headers.push_back({k, v});
          list.push_back(
              {{"method", r.method}, {"target", r.target}, {"headers", headers}, {"body", r.body}});
        }
      }
      // A recorded target, header or body need not be UTF-8 (a relayed binary body); the strict
      // default would throw here, so such bytes show as U+FFFD.
      return send(req, 200, "application/json",
                  list.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (path == "/_fake/stats") {
      json stats = {{"inflight", g_counters.inflight.load()},
                    {"requests_total", g_counters.requests_total.load()},
                    {"cancelled", g_counters.cancelled.load()},
                    {"completed_delayed", g_counters.completed_delayed.load()},
                    {"connections_total", g_counters.connections_total.load()},
                    {"ws_connections_open", state_->ws_connections_open.load()},
                    {"ws_connections_total", state_->ws_connections_total.load()},
                    {"faults_injected", g_fault.injected.load()},
                    {"counts", counts_json()}};
      return send(req, 200, "application/json", stats.dump());
    }
    if (path == "/_fake/stats/reset") {
      reset_counts();
      return send(req, 200, "application/json", "{}");
    }
    if (path == "/_fake/reset") {
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->requests.clear();
        state_->ws_received.clear();
        state_->network_info_delays = 0;
        state_->read_delay_ms = 0;
        state_->subscribe_delay_ms = 0;
        state_->ws_admin = true;
        state_->device_remove_command = true;
      }
      g_counters.cancelled = 0;
      g_counters.completed_delayed = 0;
      g_counters.connections_total = 0;
      state_->core_running = true;
      {
        std::lock_guard<std::mutex> lock(g_fault.mutex);
        g_fault.mode = "none";
        g_fault.remaining = 0;
      }
      return send(req, 200, "application/json", "{}");
    }
    if (path == "/_fake/fault") {
      auto mode = query.find("mode");
      const std::string m = mode == query.end() ? "none" : mode->second;
      if (m != "none" && m != "reset_before_status" && m != "reset_mid_body" && m != "ws_502") {
        return send(req, 400, "text/plain", "unknown fault mode");
      }
      auto prefix = query.find("path");
      {
        std::lock_guard<std::mutex> lock(g_fault.mutex);
        g_fault.mode = m;
        g_fault.remaining = static_cast<int>(query_long(query, "count", 1));
        g_fault.path_prefix = prefix == query.end() ? "/core/api" : prefix->second;
      }
      return send(req, 200, "application/json", "{}");
    }
    if (path == "/_fake/set") {
      // {"label_registry"|"entity_registry"|"device_registry"|"area_registry"|"network_info"|
      //  "zha"|"network_info_delay"|"automations"|"ws_admin"|"device_remove_command": value,
      //  "states": [state objects upserted by entity_id]} (fake_ha.hpp says what each does)
      json body = json::parse(req.body(), nullptr, false);
      if (!body.is_object()) return send(req, 400, "text/plain", "expected a JSON object");
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (body.contains("label_registry")) state_->label_registry = body["label_registry"];
        if (body.contains("entity_registry")) state_->entity_registry = body["entity_registry"];
        if (body.contains("device_registry")) state_->device_registry = body["device_registry"];
        if (body.contains("area_registry")) state_->area_registry = body["area_registry"];
        if (body.contains("network_info")) state_->network_info = body["network_info"];
        if (body.contains("network_info_delay")) {
          const json& d = body["network_info_delay"];
          state_->network_info_delay_ms = d.value("ms", 0L);
          state_->network_info_delays = d.value("count", 1);
        }
        if (body.contains("zha")) state_->zha = body["zha"];
        if (body.contains("read_delay_ms")) {
          state_->read_delay_ms = body["read_delay_ms"].get<long>();
        }
        if (body.contains("subscribe_delay_ms")) {
          state_->subscribe_delay_ms = body["subscribe_delay_ms"].get<long>();
        }
        if (body.contains("automations")) state_->automations = body["automations"];
        if (body.contains("ws_admin")) state_->ws_admin = body["ws_admin"].get<bool>();
        if (body.contains("device_remove_command")) {
          state_->device_remove_command = body["device_remove_command"].get<bool>();
        }
        for (const auto& st : body.value("states", json::array())) upsert_state(st);
      }
      return send(req, 200, "application/json", "{}");
    }
    if (path == "/_fake/event") {
      // A whole state_changed event (any time_fired, any new_state); the state is updated
      // from new_state, then the event goes to every subscription.
      json event = json::parse(req.body(), nullptr, false);
      if (!event.is_object()) return send(req, 400, "text/plain", "expected a JSON object");
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        const json ns = event.value("data", json::object()).value("new_state", json());
        if (ns.is_object()) upsert_state(ns);
      }
      broadcast_event(event.value("event_type", "state_changed"), event);
      return send(req, 200, "application/json", "{}");
    }
    if (path == "/_fake/core") {
      auto it = query.find("running");
      state_->core_running = it == query.end() || it->second != "0";
      if (!state_->core_running) drop_all_websockets();
      return send(req, 200, "application/json", "{}");
    }
    return send(req, 404, "text/plain", "unknown control endpoint");
  }

  // /api/config/automation/config/<id>, as Core's EditAutomationConfigView over
  // automations.yaml: the status and body to answer.
  std::pair<unsigned, std::string> automation_config(http::verb method, const std::string& id,
                                                     const std::string& request_body) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (method == http::verb::post) {
      json body = json::parse(request_body, nullptr, false);
      if (!body.is_object()) return {400, R"({"message":"Message malformed"})"};
      state_->automations[id] = body;
      // Core reloads the automations: the entity is named after the alias.
      const std::string alias = body.value("alias", id);
      upsert_state({{"entity_id", "automation." + slugify(alias)},
                    {"state", "on"},
                    {"attributes",
                     {{"id", id},
                      {"last_triggered", nullptr},
                      {"mode", body.value("mode", "single")},
                      {"current", 0},
                      {"friendly_name", alias}}},
                    {"last_changed", "2026-01-01T00:00:00+00:00"},
                    {"last_reported", "2026-01-01T00:00:00+00:00"},
                    {"last_updated", "2026-01-01T00:00:00+00:00"},
                    {"context", {{"id", "ctx"}, {"parent_id", nullptr}, {"user_id", nullptr}}}});
      return {200, R"({"result":"ok"})"};
    }
    if (!state_->automations.is_object() || !state_->automations.contains(id)) {
      return {404, R"({"message":"Resource not found"})"};
    }
    if (method != http::verb::delete_) return {200, state_->automations[id].dump()};
    state_->automations.erase(id);
    if (state_->states.is_array()) {
      auto& states = state_->states;
      for (auto it = states.begin(); it != states.end();) {
        const json attrs = it->value("attributes", json::object());
        const bool same = it->value("entity_id", "").rfind("automation.", 0) == 0 &&
                          attrs.is_object() && attrs.value("id", json()) == json(id);
        it = same ? states.erase(it) : it + 1;
      }
    }
    return {200, R"({"result":"ok"})"};
  }

  // Caller holds state_->mutex.
  void upsert_state(const json& st) {
    if (!st.is_object()) return;
    if (!state_->states.is_array()) state_->states = json::array();
    const std::string id = st.value("entity_id", "");
    for (auto& s : state_->states) {
      if (s.value("entity_id", "") == id) {
        s = st;
        return;
      }
    }
    state_->states.push_back(st);
  }

  // The kiosk's device template (entity_id, area, device, labels of every state), rendered as
  // Core would: entities of integrations without devices (sun, zone, person, automation, ...)
  // have device_id null, which is what makes the kiosk fall back to a registry WebSocket
  // (bench/kiosk_profile.cpp).
  std::string render_kiosk_template() {
    json rendered = json::array();
    std::lock_guard<std::mutex> lock(state_->mutex);
    int i = 0;
    for (const auto& s : state_->states) {
      const std::string id = s.value("entity_id", "");
      rendered.push_back({{"entity_id", id},
                          {"area_name", i % 3 == 0 ? json("Kitchen") : json(nullptr)},
                          {"device_id", has_device(id) ? json("dev" + std::to_string(i)) : json()},
                          {"labels", i % 5 == 0 ? json::array({"Light"}) : json::array()}});
      ++i;
    }
    return rendered.dump();
  }

  static bool has_device(const std::string& entity_id) {
    static const char* kDeviceless[] = {"sun.",    "zone.",  "person.",        "automation.",
                                        "script.", "scene.", "input_boolean.", "input_number."};
    for (const char* prefix : kDeviceless) {
      if (entity_id.rfind(prefix, 0) == 0) return false;
    }
    return true;
  }

  bool core_api(const Request& req, const std::string& path,
                const std::map<std::string, std::string>& query) {
    const auto method = req.method();
    const bool read = (method == http::verb::get && (path == "/api/" || path == "/api/config" ||
                                                     path.rfind("/api/states", 0) == 0)) ||
                      (method == http::verb::post && path == "/api/template");
    long read_delay = 0;
    if (read) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      read_delay = state_->read_delay_ms;
    }
    if (read_delay > 0 && !wait_unless_client_leaves(std::chrono::milliseconds(read_delay))) {
      return false;
    }
    if (path == "/api/" && method == http::verb::get) {
      return send(req, 200, "application/json", R"({"message":"API running."})");
    }
    if (path == "/api/states" && method == http::verb::get) {
      std::string body;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        body = state_->states.dump();
      }
      if (long slow = query_long(query, "slow_ms", 0); slow > 0) {
        return send_chunked_slowly(req, body, 8, std::chrono::milliseconds(slow));
      }
      return send(req, 200, "application/json", body);
    }
    if (path.rfind("/api/states/", 0) == 0 && method == http::verb::get) {
      const std::string id = path.substr(12);
      std::string found;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        for (const auto& s : state_->states) {
          if (s.value("entity_id", "") == id) {
            found = s.dump();
            break;
          }
        }
      }
      if (found.empty()) {
        return send(req, 404, "application/json", R"({"message":"Entity not found."})");
      }
      return send(req, 200, "application/json", std::move(found));
    }
    if (path.rfind("/api/services/", 0) == 0 && method == http::verb::post) {
      if (!req.body().empty() && !json::accept(req.body())) {
        return send(req, 400, "application/json", R"({"message":"Data should be valid JSON."})");
      }
      if (long delay = query_long(query, "delay_ms", 0); delay > 0) {
        if (!wait_unless_client_leaves(std::chrono::milliseconds(delay))) return false;
      }
      if (path == "/api/services/zha/permit") {
        json zha;
        {
          std::lock_guard<std::mutex> lock(state_->mutex);
          zha = state_->zha;
        }
        if (zha.contains("permit_status")) {
          return send(req, zha["permit_status"].get<unsigned>(), "text/plain",
                      zha.value("permit_body", std::string()));
        }
      }
      return send(req, 200, "application/json", "[]");
    }
    if (path == "/api/template" && method == http::verb::post) {
      json body = json::parse(req.body(), nullptr, false);
      if (!body.is_object()) {
        return send(req, 400, "application/json",
                    R"({"message":"Template data should be a JSON object"})");
      }
      count_template_render();
      return send(req, 200, "text/plain; charset=utf-8", render_kiosk_template());
    }
    if (path == "/api/config" && method == http::verb::get) {
      return send(req, 200, "application/json",
                  json({{"version", state_->ha_version},
                        {"location_name", "Home"},
                        {"time_zone", "Europe/London"},
                        {"unit_system", {{"temperature", "°C"}}},
                        {"state", "RUNNING"}})
                      .dump());
    }
    if (path.rfind("/api/config/automation/config/", 0) == 0) {
      const auto [status, body] = automation_config(method, path.substr(30), req.body());
      return send(req, status, "application/json", body);
    }
    if (path.rfind("/api/config/script/config/", 0) == 0 && method == http::verb::post) {
      // Core's EditScriptConfigView: a JSON object is saved (the fake keeps nothing).
      if (!json::parse(req.body(), nullptr, false).is_object()) {
        return send(req, 400, "application/json", R"({"message":"Message malformed"})");
      }
      return send(req, 200, "application/json", R"({"result":"ok"})");
    }
    if (path == "/api/config/core/check_config" && method == http::verb::post) {
      return send(req, 200, "application/json",
                  R"({"result":"valid","errors":null,"warnings":null})");
    }
    if (path == "/api/config/config_entries/entry" && method == http::verb::get) {
      return send(req, 200, "application/json", config_entries().dump());
    }
    if (path == "/api/config/config_entries/flow" && method == http::verb::post) {
      return send(req, 200, "application/json",
                  R"({"type":"form","flow_id":"flow123","handler":"matter","step_id":"user"})");
    }
    if (path.rfind("/api/config/config_entries/flow/", 0) == 0) {
      // Any step of a flow that is not in progress, as HA answers once it finished.
      return send(req, 400, "application/json", R"({"message":"Invalid flow specified"})");
    }
    if (path.rfind("/api/camera_proxy/", 0) == 0 && method == http::verb::get) {
      const std::string id = path.substr(18);
      const auto size = static_cast<std::size_t>(query_long(query, "size", 256 * 1024));
      if (id == "camera.missing") return send(req, 404, "text/plain", "404: Not Found");
      if (id == "camera.broken") return send_truncated(req, camera_bytes(size));
      if (long pause = query_long(query, "pause_after_header_ms", 0); pause > 0) {
        return send_header_then_body(req, "image/jpeg", camera_bytes(size),
                                     std::chrono::milliseconds(pause));
      }
      if (long pause = query_long(query, "pause_inside_header_ms", 0); pause > 0) {
        return send_split_header(req, "image/jpeg", camera_bytes(size),
                                 std::chrono::milliseconds(pause));
      }
      return send(req, 200, "image/jpeg", camera_bytes(size));
    }
    return send(req, 404, "text/plain", "404: Not Found");
  }

  // True when the delay ran out; false when the client (the agent) closed meanwhile.
  bool wait_unless_client_leaves(std::chrono::milliseconds delay) {
    ++g_counters.inflight;
    const auto deadline = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < deadline) {
      if (peer_closed(socket_)) {
        --g_counters.inflight;
        ++g_counters.cancelled;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    --g_counters.inflight;
    ++g_counters.completed_delayed;
    return true;
  }

  bool send(const Request& req, unsigned status, const std::string& type, std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::server, "Python/3.13 aiohttp/3.12");
    res.set(http::field::content_type, type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    beast::error_code ec;
    http::write(socket_, res, ec);
    return !ec && req.keep_alive();
  }

  bool send_chunked_slowly(const Request& req, const std::string& body, int chunks,
                           std::chrono::milliseconds interval) {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n";
    head += req.keep_alive() ? "\r\n" : "Connection: close\r\n\r\n";
    beast::error_code ec;
    asio::write(socket_, asio::buffer(head), ec);
    const std::size_t step = (body.size() + chunks - 1) / chunks;
    for (std::size_t off = 0; off < body.size() && !ec; off += step) {
      if (off > 0) std::this_thread::sleep_for(interval);
      const std::string part = body.substr(off, step);
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", part.size());
      asio::write(socket_, asio::buffer(std::string(size_line) + part + "\r\n"), ec);
    }
    if (!ec) asio::write(socket_, asio::buffer(std::string("0\r\n\r\n")), ec);
    return !ec && req.keep_alive();
  }

  // Home Assistant restarting mid-response: full header, half the body, then the socket dies.
  // The header in a segment of its own, a pause, then the body (Content-Length framing), as
  // aiohttp does for a StreamResponse whose length is known.
  bool send_header_then_body(const Request& req, const std::string& type, const std::string& body,
                             std::chrono::milliseconds pause) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    head += req.keep_alive() ? "\r\n" : "Connection: close\r\n\r\n";
    beast::error_code ec;
    asio::write(socket_, asio::buffer(head), ec);
    std::this_thread::sleep_for(pause);
    if (!ec) asio::write(socket_, asio::buffer(body), ec);
    return !ec && req.keep_alive();
  }

  // The head in two segments, split inside a field line, with a pause between them: what a
  // slow or busy server can do. The proxy must wait for the whole head before it parses.
  bool send_split_header(const Request& req, const std::string& type, const std::string& body,
                         std::chrono::milliseconds pause) {
    std::string head = "HTTP/1.1 200 OK\r\nX-First: one\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    head += req.keep_alive() ? "\r\n" : "Connection: close\r\n\r\n";
    const std::size_t split = head.find("Content-Type") + 5;  // "Conte" | "nt-Type: ..."
    beast::error_code ec;
    asio::write(socket_, asio::buffer(head.data(), split), ec);
    std::this_thread::sleep_for(pause);
    if (!ec) asio::write(socket_, asio::buffer(head.data() + split, head.size() - split), ec);
    if (!ec) asio::write(socket_, asio::buffer(body), ec);
    return !ec && req.keep_alive();
  }

  bool send_truncated(const Request& req, const std::string& body) {
    (void)req;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n";
    beast::error_code ec;
    asio::write(socket_, asio::buffer(head), ec);
    asio::write(socket_, asio::buffer(body.data(), body.size() / 2), ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return false;
  }

  tcp::socket& socket_;
  std::shared_ptr<FakeHaState> state_;
};

// Home Assistant (or the Supervisor proxy) dying mid-body: a complete header promising the
// whole states document, half of it, then a reset.
void send_half_then_reset(tcp::socket& socket, FakeHaState& state) {
  std::string body;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    body = state.states.dump();
  }
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  beast::error_code ec;
  asio::write(socket, asio::buffer(head), ec);
  asio::write(socket, asio::buffer(body.data(), body.size() / 2), ec);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reset_connection(socket);
}

// A fault applied instead of the normal answer. Returns false when the connection is gone.
bool apply_fault(const std::string& fault, tcp::socket& socket, const Request& req,
                 FakeHaState& state) {
  if (fault == "reset_before_status") {
    reset_connection(socket);
    return false;
  }
  if (fault == "reset_mid_body") {
    send_half_then_reset(socket, state);
    return false;
  }
  // ws_502: the Supervisor cannot reach Core, so it refuses the upgrade.
  http::response<http::string_body> res{http::status::bad_gateway, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(false);
  res.body() = "502: Bad Gateway";
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
  return false;
}

void send_internal_error(tcp::socket& socket, const Request& req, const std::string& what) {
  http::response<http::string_body> res{http::status::internal_server_error, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(false);
  res.body() = "fake_ha: " + what;
  res.prepare_payload();
  beast::error_code ec;
  http::write(socket, res, ec);
}

bool is_websocket_path(const std::string& path) {
  return path == "/core/api/websocket" || path == "/core/websocket";
}

void serve_connection(tcp::socket socket, std::shared_ptr<FakeHaState> state) {
  ++g_counters.connections_total;
  beast::flat_buffer buffer;
  Handler handler(socket, state);
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    beast::error_code ec;
    http::read(socket, buffer, parser, ec);
    if (ec) break;
    Request req = parser.release();
    const std::string path = path_of(req.target());
    const bool upgrade = beast::websocket::is_upgrade(req) && is_websocket_path(path);
    if (std::string fault = take_fault(path, upgrade); !fault.empty()) {
      if (!apply_fault(fault, socket, req, *state)) break;
      continue;
    }
    if (upgrade) {
      serve_websocket(std::move(socket), std::move(req), std::move(buffer), state);
      return;
    }
    bool keep_open = false;
    try {
      keep_open = handler.handle(req);
    } catch (const std::exception& e) {
      // A malformed control request (a value of the wrong JSON type, a recorded body that is not
      // UTF-8 in /_fake/requests) must fail that request, not std::terminate the whole stand-in
      // and every other test connection with it.
      std::cerr << "fake_ha: " << req.method_string() << " " << req.target()
                << " failed: " << e.what() << "\n";
      send_internal_error(socket, req, e.what());
    }
    if (!keep_open) break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

// Returns false when no thread could be started; the socket is closed then. Created detached
// (common/detached_thread.hpp says why): std::thread(...).detach() segfaulted here once in
// pthread_detach under nginx's connection churn.
bool serve_on_detached_thread(tcp::socket socket, std::shared_ptr<FakeHaState> state) {
  auto shared_socket = std::make_shared<tcp::socket>(std::move(socket));
  const bool started = threads::start_detached([shared_socket, state = std::move(state)]() mutable {
    serve_connection(std::move(*shared_socket), std::move(state));
  });
  if (!started) std::cerr << "fake_ha: cannot start a connection thread\n";
  return started;
}

}  // namespace
}  // namespace dinodia::fakes

int main(int argc, char** argv) {
  using namespace dinodia::fakes;
  int port = 0;
  int entities = 300;
  auto state = std::make_shared<FakeHaState>();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--token") {
      state->supervisor_token = argv[i + 1];
    } else if (flag == "--entities") {
      entities = std::atoi(argv[i + 1]);
    } else {
      std::cerr << "usage: fake_ha --port N --token T [--entities N]\n";
      return 2;
    }
  }
  state->states = make_states(entities);
  state->network_info = {
      {"interfaces", json::array({{{"interface", "eth0"},
                                   {"type", "ethernet"},
                                   {"enabled", true},
                                   {"connected", true},
                                   {"primary", true},
                                   {"mac", "02:42:AC:11:00:02"},
                                   {"ipv4",
                                    {{"method", "auto"},
                                     {"address", json::array({"192.168.1.50/24"})},
                                     {"nameservers", json::array({"192.168.1.1"})},
                                     {"gateway", "192.168.1.1"},
                                     {"ready", true}}},
                                   {"ipv6", nullptr},
                                   {"wifi", nullptr},
                                   {"vlan", nullptr}}})},
      {"docker",
       {{"interface", "hassio"},
        {"address", "172.30.32.0/23"},
        {"gateway", "172.30.32.1"},
        {"dns", "172.30.32.3"}}},
      {"host_internet", true},
      {"supervisor_internet", true}};

  asio::io_context ioc;
  tcp::acceptor acceptor(
      ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  std::cout << "LISTENING " << acceptor.local_endpoint().port() << std::endl;
  while (true) {
    beast::error_code ec;
    tcp::socket socket(ioc);
    acceptor.accept(socket, ec);
    if (ec) continue;
    // As aiohttp (Home Assistant's server) does: answers go out at once, never held by Nagle
    // for the peer's delayed ACK (40 ms stalls on a reused keep-alive connection).
    socket.set_option(tcp::no_delay(true), ec);
    // Out of threads for a moment: that connection is closed, the listener keeps serving.
    if (!serve_on_detached_thread(std::move(socket), state)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}
