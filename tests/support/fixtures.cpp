#include "tests/support/fixtures.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/clock.hpp"
#include "tests/support/time_scale.hpp"
#include "tests/support/ws_client.hpp"

namespace dinodia::testing {

using nlohmann::json;

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(step);
  }
  return condition();
}

namespace {
httplib::Client local_client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  return c;
}
}  // namespace

httplib::Result http_get(int port, const std::string& path, const httplib::Headers& headers) {
  return local_client(port).Get(path.c_str(), headers);
}

httplib::Result http_post_json(int port, const std::string& path, const json& body) {
  return local_client(port).Post(path.c_str(), body.dump(), "application/json");
}

int status_of(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(raw.c_str() + 9);
}

std::string body_of(const std::string& raw) {
  auto p = raw.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : raw.substr(p + 4);
}

long content_length_of(const std::string& raw) {
  const std::string head = raw.substr(0, raw.find("\r\n\r\n"));
  for (const char* name : {"Content-Length: ", "content-length: "}) {
    auto p = head.find(name);
    if (p != std::string::npos) return std::atol(head.c_str() + p + std::strlen(name));
  }
  return -1;
}

void check_no_secrets(const std::string& text, const std::vector<std::string>& secrets,
                      const std::string& where) {
  for (const auto& secret : secrets) {
    INFO(where << ": secret " << secret.substr(0, 6) << "...");
    CHECK(text.find(secret) == std::string::npos);
  }
}

void ws_authenticate(WsClient& client, std::uint16_t port, const std::string& token) {
  client.connect(port);
  REQUIRE(client.read_json()["type"] == "auth_required");
  client.send_json({{"type", "auth"}, {"access_token", token}});
  REQUIRE(client.read_json()["type"] == "auth_ok");
}

json state_changed_event(const json& new_state, std::int64_t fired_ms) {
  return {
      {"event_type", "state_changed"},
      {"data",
       {{"entity_id", new_state["entity_id"]}, {"old_state", nullptr}, {"new_state", new_state}}},
      {"origin", "LOCAL"},
      {"time_fired", dinodia::clock::iso8601_from_millis(fired_ms)}};
}

json lan_agent_options(const std::string& hub_token) {
  return json{{"port", 0},
              {"hub_tokens", json::array({hub_token})},
              {"heating_usage_tracking_enabled", false},
              {"electric_usage_tracking_enabled", false}};
}

json sync_agent_options(const std::string& serial, const std::string& bootstrap_secret,
                        const std::string& status_token, const std::string& base_url) {
  return json{{"port", 0},
              {"platform_sync_enabled", true},
              {"platform_base_url", base_url},
              {"hub_agent_id", serial},
              {"hub_agent_secret", bootstrap_secret},
              {"sync_status_token", status_token},
              {"heating_usage_tracking_enabled", false},
              {"electric_usage_tracking_enabled", false}};
}

EnvMap fast_sync_env() {
  return {{"DINODIA_SYNC_INTERVAL_SECONDS", "1"}, {"DINODIA_TOKEN_STATE_PATH", ""}};
}

// ------------------------------------------------------------------------------ FakeHaProcess

FakeHaProcess::FakeHaProcess(const TempDir& dir, std::string supervisor_token, int entities)
    : token_(std::move(supervisor_token)) {
  std::vector<std::string> argv{fake_ha_binary(), "--port", "0", "--token", token_};
  if (entities > 0) {
    argv.push_back("--entities");
    argv.push_back(std::to_string(entities));
  }
  proc_ = std::make_unique<Process>(argv, EnvMap{}, dir.file("fake_ha.log"));
  auto line = proc_->wait_for_log("LISTENING ", 10s);
  REQUIRE(line.has_value());
  port_ = port_from_line(*line);
  REQUIRE(port_ > 0);
}

httplib::Client FakeHaProcess::client() const {
  return local_client(port_);
}

void FakeHaProcess::control(const std::string& path_and_query) const {
  auto r = http_post_json(port_, path_and_query, json::object());
  REQUIRE(r);
  REQUIRE(r->status == 200);
}

json FakeHaProcess::post(const std::string& path, const json& body) const {
  auto r = http_post_json(port_, path, body);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body, nullptr, false);
}

json FakeHaProcess::get_json(const std::string& path) const {
  auto r = http_get(port_, path);
  REQUIRE(r);
  return json::parse(r->body);
}

json FakeHaProcess::stats() const {
  return get_json("/_fake/stats");
}

json FakeHaProcess::requests() const {
  return get_json("/_fake/requests");
}

std::vector<json> FakeHaProcess::requests_to(const std::string& prefix) const {
  std::vector<json> out;
  for (auto& r : requests()) {
    if (r["target"].get<std::string>().rfind(prefix, 0) == 0) out.push_back(r);
  }
  return out;
}

json FakeHaProcess::ws_command(json command) const {
  WsClient direct;
  direct.connect(static_cast<std::uint16_t>(port_), "/core/api/websocket");
  REQUIRE(direct.read_json()["type"] == "auth_required");
  direct.send_json({{"type", "auth"}, {"access_token", token_}});
  REQUIRE(direct.read_json()["type"] == "auth_ok");
  command["id"] = 1;
  direct.send_json(command);
  json result = direct.read_result(1, std::chrono::seconds(10));
  direct.close();
  return result;
}

// ------------------------------------------------------------------------ FakePlatformProcess

FakePlatformProcess::FakePlatformProcess(const TempDir& dir, std::string serial,
                                         const std::string& bootstrap_secret,
                                         FakePlatformOptions options)
    : serial_(std::move(serial)) {
  std::vector<std::string> argv{fake_platform_binary(), "--port", "0"};
  if (options.second_listener) argv.insert(argv.end(), {"--port2", "0"});
  if (!options.backend.empty()) argv.insert(argv.end(), {"--backend", options.backend});
  if (options.second_listener) argv.insert(argv.end(), {"--backend2", "aws"});
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  proc_ = std::make_unique<Process>(argv, EnvMap{}, dir.file("platform.log"));
  if (options.second_listener) {
    // The fake prints LISTENING2 after LISTENING: once it is there, both are.
    auto line2 = proc_->wait_for_log("LISTENING2 ", 10s);
    REQUIRE(line2.has_value());
    port2_ = port_from_line(*line2);
    REQUIRE(port2_ > 0);
  }
  auto line = proc_->wait_for_log("LISTENING ", 10s);
  REQUIRE(line.has_value());
  port_ = port_from_line(*line);
  REQUIRE(port_ > 0);
  control("/_fake/provision", {{"serial", serial_}, {"bootstrapSecret", bootstrap_secret}});
}

std::string FakePlatformProcess::url(int listener) const {
  return "http://127.0.0.1:" + std::to_string(port(listener));
}

json FakePlatformProcess::state() const {
  auto r = http_get(port_, "/_fake/state?serial=" + serial_);
  REQUIRE(r);
  return json::parse(r->body);
}

json FakePlatformProcess::state_if_available() const {
  auto r = http_get(port_, "/_fake/state?serial=" + serial_);
  if (!r || r->status != 200) return json();
  return json::parse(r->body, nullptr, false);
}

std::vector<json> FakePlatformProcess::token_state_bodies() const {
  std::vector<json> out;
  for (const auto& r : state_if_available().value("recentRequests", json::array())) {
    if (r.value("route", "").find("token") != std::string::npos && r["body"].is_object()) {
      out.push_back(r["body"]);
    }
  }
  return out;
}

void FakePlatformProcess::check_no_telemetry_drops() const {
  json t = state_if_available().value("hub", json::object()).value("telemetry", json());
  if (!t.is_object()) return;
  INFO(t.dump());
  for (const char* key : {"heatingUsage", "electricUsage"}) {
    if (t.contains(key)) {
      CHECK_FALSE(t[key].contains("ignored"));
      CHECK(t[key].value("dropped", json::array()).empty());
      CHECK(t[key].value("beyondLimit", 0) == 0);
    }
  }
  if (t.contains("lanBaseUrl")) CHECK(t["lanBaseUrl"].value("accepted", false));
  if (t.contains("haAreas")) CHECK(t["haAreas"].value("valid", false));
}

std::optional<std::string> FakePlatformProcess::published_token() const {
  auto r = http_get(port_, "/_fake/published-token?serial=" + serial_);
  if (!r || r->status != 200) return std::nullopt;
  return json::parse(r->body).at("token").get<std::string>();
}

void FakePlatformProcess::failure(const std::string& mode, int listener, int seconds) const {
  json body{{"mode", mode}};
  if (listener) body["listener"] = listener;
  if (seconds) body["seconds"] = seconds;
  control("/_fake/failure", body);
}

void FakePlatformProcess::control(const std::string& path, const json& body) const {
  auto r = http_post_json(port_, path, body);
  REQUIRE(r);
  REQUIRE(r->status == 200);
}

void FakePlatformProcess::check_no_duplicate_nonces() const {
  json s = state();
  INFO("nonces seen: " << s["nonceCount"]);
  CHECK(s["duplicateNonceAttempts"] == 0);
  CHECK(s["replaysRejected"] == 0);
}

// ------------------------------------------------------------------------------- AgentProcess

AgentProcess::AgentProcess(AgentSetup setup) : setup_(std::move(setup)) {
  if (setup_.files_dir.empty()) setup_.files_dir = setup_.data_dir;
}

void AgentProcess::launch(const std::string& options_text, const EnvMap& extra_env) {
  const std::string options_path = setup_.files_dir + "/options.json";
  write_file(options_path, options_text);
  EnvMap env{{"DINODIA_OPTIONS_PATH", options_path},
             {"DINODIA_DATA_DIR", setup_.data_dir},
             {"DINODIA_SUPERVISOR_URL", setup_.supervisor_url},
             {"SUPERVISOR_TOKEN", setup_.supervisor_token},
             {"DINODIA_BIND_ADDRESS", "127.0.0.1"}};
  for (const auto& [k, v] : setup_.env) env[k] = v;
  for (const auto& [k, v] : extra_env) env[k] = v;
  ++runs_;
  port_ = 0;
  proc_ = std::make_unique<Process>(std::vector<std::string>{agent_binary()}, env, log_path(runs_));
}

int AgentProcess::start(const json& options, const EnvMap& extra_env) {
  launch(options.dump(), extra_env);
  return wait_listening();
}

int AgentProcess::wait_listening() {
  auto line = proc_->wait_for_log("INFO Listening", setup_.listen_timeout);
  INFO(proc_->log());
  REQUIRE(line.has_value());
  port_ = port_from_line(*line);
  REQUIRE(port_ > 0);
  return port_;
}

void AgentProcess::stop() {
  if (!proc_) return;
  proc_->signal(SIGTERM);
  auto code = proc_->wait(20s);
  CHECK(code == std::optional<int>(0));
}

std::string AgentProcess::log_path(int run) const {
  return setup_.files_dir + "/agent-" + std::to_string(run) + ".log";
}

std::string AgentProcess::all_logs() const {
  std::string all;
  for (int run = 1; run <= runs_; ++run) all += read_file(log_path(run));
  return all;
}

void AgentProcess::check_logs_have_no_secrets(const std::vector<std::string>& secrets) const {
  for (int run = 1; run <= runs_; ++run) {
    check_no_secrets(read_file(log_path(run)), secrets, "agent run " + std::to_string(run));
  }
}

bool AgentProcess::wait_log(const std::string& needle, std::chrono::milliseconds timeout) const {
  return proc_->wait_for_log(needle, timeout).has_value();
}

bool AgentProcess::wait_count(const std::string& needle, std::size_t n,
                              std::chrono::milliseconds timeout) const {
  return wait_until([&] { return proc_->count_log(needle) >= n; }, timeout);
}

int AgentProcess::api_status(const std::string& token) const {
  auto r = http_get(port_, "/api/", {{"Authorization", "Bearer " + token}});
  return r ? r->status : 0;
}

json AgentProcess::sync_status(const std::string& status_token) const {
  auto r = http_get(port_, "/_dinodia/sync-status", {{"Authorization", "Bearer " + status_token}});
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

}  // namespace dinodia::testing
