// The LAN bridge's WebSocket relay at /api/websocket, end to end: the real agent binary against
// the Home Assistant stand-in (fake_ha), over real sockets (docs/compatibility.md#websocket,
// docs/platform-protocol.md#apps, docs/lan-bridge.md).
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/fixtures.hpp"
#include "tests/support/process.hpp"
#include "tests/support/time_scale.hpp"
#include "tests/support/ws_client.hpp"

using namespace dinodia::testing;
using nlohmann::json;

namespace {

const std::string kSupervisorToken = "sup-token-9f3b7c1d2e";
const std::string kPlainHubToken = "plain-hub-token-5a6b7c";
// The 0.4.17 test vector (docs/compatibility.md#hub-tokens): only the hash is configured.
const std::string kHashedHubToken = "example-hub-token";
const std::string kHashedHubTokenSha =
    "fde1bc094b00277cfc92be793d20c5792fc46ed8ababf86b9927b7aa26344e61";
const std::string kHaAccessToken = "ha-long-lived-token-77aa";
const std::string kInvalidHubToken = R"({"type":"auth_invalid","message":"Invalid hub token."})";
const std::string kUnauthorized =
    R"("type":"result","success":false,"error":{"code":"unauthorized","message":"Unauthorized"}})";

std::string unauthorized_reply(int id) {
  return "{\"id\":" + std::to_string(id) + "," + kUnauthorized;
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct AgentOptions {
  std::string ws_auth_mode = "supervisor";
  std::string ha_access_token;
  std::string agent_supervisor_token = kSupervisorToken;  // what the agent is given
  std::string upstream_url;                               // default: the fake
  std::string bridge_timeouts;       // DINODIA_BRIDGE_TIMEOUTS, e.g. "ws_auth=2"; empty: defaults
  bool allow_hassio_domain = false;  // the add-on option; written only when true
  bool kiosk_relief = false;         // on, its own WebSocket counts among the fake's connections
};

class Fixture {
 public:
  explicit Fixture(AgentOptions o = {})
      : fake_(dir_, kSupervisorToken, 50),
        agent_({dir_.path(),
                "",
                o.upstream_url.empty() ? fake_.url() : o.upstream_url,
                o.agent_supervisor_token,
                {{"DINODIA_BRIDGE_TIMEOUTS", o.bridge_timeouts}}}) {
    // "port": 0 binds a free port; the agent reports it in its Listening line. Usage tracking
    // is off: its own long-lived Home Assistant connection would otherwise race the relay's
    // upstream connection in the tests that play the upstream themselves.
    json options = lan_agent_options(kPlainHubToken);
    options["kiosk_relief"] = o.kiosk_relief;
    options["hub_token_hashes"] = json::array({kHashedHubTokenSha});
    options["ws_auth_mode"] = o.ws_auth_mode;
    options["ha_access_token"] = o.ha_access_token;
    options["log_level"] = "debug";  // even debug output must not carry secrets
    if (o.allow_hassio_domain) options["allow_hassio_domain"] = true;
    agent_.start(options);
  }

  std::uint16_t port() const { return static_cast<std::uint16_t>(agent_.port()); }
  std::uint16_t fake_port() const { return static_cast<std::uint16_t>(fake_.port()); }
  Process& agent() { return agent_.process(); }

  // Legacy order: auth_required, auth, auth_ok.
  void authenticate(WsClient& client, const std::string& token = kPlainHubToken) {
    ws_authenticate(client, port(), token);
  }

  // A command straight to the fake (not through the agent), e.g. to inspect what it received.
  json fake_command(json command) { return fake_.ws_command(std::move(command)); }

  // The fake's counters: ws_connections_total / ws_connections_open count the WebSocket
  // connections the agent opened to "Home Assistant".
  json fake_stats() { return fake_.stats(); }

  // Waits until the fake holds `open` WebSocket connections; false after 5 s.
  bool wait_fake_ws_open(int open) {
    for (int i = 0; i < 100; ++i) {
      if (fake_stats()["ws_connections_open"] == open) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  json fake_received() {
    json r = fake_command({{"type", "fake/received"}});
    REQUIRE(r["success"] == true);
    return r["result"];
  }

  void expect_no_secrets_logged() {
    check_no_secrets(agent_.all_logs(),
                     {kSupervisorToken, kPlainHubToken, kHashedHubToken, kHaAccessToken});
  }

 private:
  TempDir dir_;
  FakeHaProcess fake_;
  AgentProcess agent_;
};

// Expects the connection to end with a close frame carrying `code`.
void expect_closed_with(WsClient& client, int code,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  WsEvent event = client.read(timeout);
  INFO(event.describe());
  REQUIRE(event.is_closed());
  CHECK(event.close_code == code);
}

}  // namespace

TEST_CASE("legacy handshake order: auth_required, hub-token auth, auth_ok, then commands") {
  Fixture f;
  WsClient client;
  client.connect(f.port());
  json required = client.read_json();
  CHECK(required["type"] == "auth_required");
  CHECK(required["ha_version"] == "2026.11.0");  // HA's own message, forwarded
  // The hash-only token, with the whitespace 0.4.17 trims.
  client.send_json({{"type", "auth"}, {"access_token", "  " + kHashedHubToken + " "}});
  json ok = client.read_json();
  CHECK(ok["type"] == "auth_ok");
  CHECK(ok["ha_version"] == "2026.11.0");
  client.send_json({{"id", 1}, {"type", "config/entity_registry/list"}});
  json result = client.read_result(1);
  CHECK(result["success"] == true);
  CHECK(result["result"].size() == 50);
  client.send_json({{"id", 2}, {"type", "ping"}});
  CHECK(client.read_json() == json({{"id", 2}, {"type", "pong"}}));
  // The client's auth never reaches Home Assistant.
  for (const auto& m : f.fake_received()) CHECK(m.value("type", "") != "auth");
  f.expect_no_secrets_logged();
}

TEST_CASE("a client that sends auth before it sees auth_required (HA's JS client) works") {
  Fixture f;
  WsClient client;
  client.connect(f.port());
  client.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
  client.send_json(
      {{"type", "supported_features"}, {"id", 1}, {"features", {{"coalesce_messages", 1}}}});
  CHECK(client.read_json()["type"] == "auth_required");
  CHECK(client.read_json()["type"] == "auth_ok");
  CHECK(client.read_result(1)["success"] == true);
}

TEST_CASE("a wrong hub token gets the exact legacy auth_invalid and a close") {
  Fixture f;
  WsClient client;
  client.connect(f.port());
  REQUIRE(client.read_json()["type"] == "auth_required");
  client.send_json({{"type", "auth"}, {"access_token", "not-a-hub-token"}});
  WsEvent event = client.read();
  REQUIRE(event.is_message());
  CHECK(event.data == kInvalidHubToken);
  CHECK(client.read().ended());

  SECTION("also a late second auth on an authenticated session") {
    WsClient second;
    f.authenticate(second);
    second.send_json({{"type", "auth"}, {"access_token", "wrong"}});
    WsEvent late = second.read();
    INFO(late.describe());
    REQUIRE(late.is_message());
    CHECK(late.data == kInvalidHubToken);
    CHECK(second.read().ended());
  }
  SECTION("an empty or non-string token is invalid too") {
    WsClient second;
    second.connect(f.port());
    second.send_text(R"({"type":"auth","access_token":12345})");
    // The reply may overtake HA's auth_required here, as in legacy; only its content matters.
    WsEvent first = second.read();
    if (first.is_message() && first.data.find("auth_required") != std::string::npos) {
      first = second.read();
    }
    CHECK(first.data == kInvalidHubToken);
  }
  f.expect_no_secrets_logged();
}

TEST_CASE("a message before auth is buffered and delivered after auth_ok") {
  Fixture f;
  WsClient client;
  client.connect(f.port());
  client.send_json({{"type", "subscribe_events"}, {"id", 1}});
  CHECK(client.read_json()["type"] == "auth_required");
  // Nothing goes upstream before the hub token is checked.
  CHECK(client.read(std::chrono::milliseconds(300)).kind == WsEvent::Kind::timeout);
  client.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
  CHECK(client.read_json()["type"] == "auth_ok");
  json subscribed = client.read_json();
  CHECK(subscribed["id"] == 1);
  CHECK(subscribed["success"] == true);
  // The subscription is live upstream: an event fired in HA reaches the client.
  f.fake_command(
      {{"type", "fake/fire_state_changed"}, {"entity_id", "light.kitchen"}, {"state", "on"}});
  json event = client.read_json();
  CHECK(event["id"] == 1);
  CHECK(event["type"] == "event");
  CHECK(event["event"]["data"]["new_state"]["state"] == "on");
}

TEST_CASE("pre-auth buffering is bounded") {
  Fixture f;
  SECTION("by message count: the 65th message closes with 1008") {
    WsClient client;
    client.connect(f.port());
    REQUIRE(client.read_json()["type"] == "auth_required");
    for (int i = 1; i <= 65; ++i) client.send_json({{"type", "ping"}, {"id", i}});
    expect_closed_with(client, 1008);
  }
  SECTION("by bytes: a 2 MiB frame before auth is refused") {
    WsClient client;
    client.connect(f.port());
    REQUIRE(client.read_json()["type"] == "auth_required");
    // The agent refuses the frame from its header, so our write may fail half-way: fine.
    try {
      client.send_text(R"({"id":1,"type":"x","pad":")" + std::string(2 * 1024 * 1024, 'a') + "\"}");
    } catch (const std::runtime_error&) {
    }
    WsEvent event = client.read();
    INFO(event.describe());
    // The agent sends close 1009 (message too big) and drops the connection; as it does so
    // with our frame still unread, the kernel may turn that into a reset first.
    REQUIRE(event.ended());
    if (event.is_closed()) CHECK(event.close_code == 1009);
  }
  // The agent keeps serving others.
  WsClient ok;
  f.authenticate(ok);
}

TEST_CASE("deeply nested frames before and after auth never crash the agent") {
  // Fuzzing found that a ~400 KB frame {"type":"supervisor/x","id":[[[...]]]} (or a batch
  // holding one) crashed the agent, before authentication, through recursive JSON copies.
  Fixture f;
  const std::string nest(150000, '['), unnest(150000, ']');
  {
    WsClient hostile;
    hostile.connect(f.port());
    REQUIRE(hostile.read_json()["type"] == "auth_required");
    // Before a hub token a frame this size (300 KB) is over the 4 KiB pre-auth limit: the agent
    // may close with 1009 while we are still writing, so a failed write is fine here.
    try {
      hostile.send_text(R"({"type":"supervisor/x","id":)" + nest + unnest + "}");
      hostile.send_text(R"([{"type":"hassio/x"},)" + nest + unnest + "]");
    } catch (const std::runtime_error&) {
    }
    hostile.abort();
  }
  WsClient client;
  f.authenticate(client);
  client.send_text(R"({"type":"supervisor/x","id":)" + nest + unnest + "}");
  client.send_json({{"id", 5}, {"type", "ping"}});
  CHECK(client.read_result(5)["type"] == "pong");
  WsClient another;  // the process is still there and serving
  f.authenticate(another);
}

TEST_CASE("a client that never authenticates is closed after the auth timeout (10 s, here 2 s)") {
  AgentOptions o;
  o.bridge_timeouts = "ws_auth=2";  // the 10 s default made this test slow, not stronger
  Fixture f(o);
  WsClient client;
  client.connect(f.port());
  REQUIRE(client.read_json()["type"] == "auth_required");
  CHECK(client.read(std::chrono::milliseconds(1500)).kind == WsEvent::Kind::timeout);
  WsEvent event = client.read(std::chrono::seconds(3));
  INFO(event.describe());
  REQUIRE(event.is_closed());
  CHECK(event.close_code == 1008);
  CHECK(event.close_reason == "Authentication timeout");
}

TEST_CASE(
    "frames are relayed byte-exact in both directions, text stays text, binary stays binary") {
  Fixture f;
  WsClient client;
  f.authenticate(client);
  SECTION("upstream to client") {
    const std::string odd =
        "{ \"id\" : 7 ,\"type\":\"event\",  \"event\":{\"z\":1,\"a\":12345678901234567890123456789,"
        "\"f\":1.10000000000000000001,\"u\":\"\\u00e9\"} }";
    client.send_json({{"id", 1}, {"type", "fake/raw"}, {"text", odd}});
    WsEvent event = client.read();
    REQUIRE(event.is_message());
    CHECK_FALSE(event.binary);
    CHECK(event.data == odd);
    CHECK(client.read_result(1)["success"] == true);
  }
  SECTION("client to upstream") {
    const std::string odd =
        "{\"type\":\"fake/unknown\",   \"id\":3, \"big\": 123456789012345678901234567890 }";
    client.send_text(odd);
    CHECK(client.read_result(3)["error"]["code"] == "unknown_command");
    json raw = f.fake_command({{"type", "fake/received_raw"}})["result"];
    CHECK(std::find(raw.begin(), raw.end(), json(odd)) != raw.end());
  }
  SECTION("binary frames both ways (the fake echoes them)") {
    std::string bytes("\x01\x00\xff\x7b\x22", 5);
    bytes += std::string(70000, '\x80');
    client.send_binary(bytes);
    WsEvent event = client.read();
    REQUIRE(event.is_message());
    CHECK(event.binary);
    CHECK(event.data == bytes);
  }
}

TEST_CASE("frames sent back to back stay whole, byte-exact and in order when writes are shared") {
  // The relay hands the socket several waiting frames in one write (docs/lan-bridge.md,
  // "Throughput"); each must still arrive as its own message, unchanged, in order. Large frames
  // (16 KiB and more) take the path without the copy, between small ones.
  Fixture f;
  WsClient client;
  client.set_read_limit(64 * 1024 * 1024);
  f.authenticate(client);
  REQUIRE(f.fake_command({{"type", "fake/clear_received"}})["success"] == true);
  SECTION("client to upstream, and the answers back") {
    std::vector<std::string> sent;
    for (int id = 1; id <= 300; ++id) {
      if (id % 25 == 0) {
        sent.push_back("{\"id\":" + std::to_string(id) + ",\"type\":\"fake/unknown\",\"pad\":\"" +
                       std::string(20000 + static_cast<std::size_t>(id), 'p') + "\"}");
      } else {
        sent.push_back("{\"id\":" + std::to_string(id) + ",  \"type\":\"ping\"}");
      }
    }
    for (const auto& frame : sent) client.send_text(frame);
    for (int id = 1; id <= 300; ++id) {
      json answer = client.read_json();
      INFO("id " << id << ": " << answer.dump());
      REQUIRE(answer["id"] == id);
      if (id % 25 == 0) {
        CHECK(answer["error"]["code"] == "unknown_command");
      } else {
        CHECK(answer == json{{"id", id}, {"type", "pong"}});
      }
    }
    json raw = f.fake_command({{"type", "fake/received_raw"}})["result"];
    std::vector<std::string> received;
    for (const auto& frame : raw) {
      if (frame.get_ref<const std::string&>().find("fake/received_raw") == std::string::npos) {
        received.push_back(frame.get<std::string>());
      }
    }
    CHECK(received == sent);
  }
  SECTION("upstream to client: a flood of small and large events, each exactly as HA wrote it") {
    for (const auto& [id, size] : {std::pair{1, 100}, std::pair{2, 40000}, std::pair{3, 10}}) {
      const int count = 200;
      client.send_json({{"id", id}, {"type", "fake/flood"}, {"count", count}, {"size", size}});
      for (int n = count - 1; n >= 0; --n) {
        WsEvent event = client.read();
        REQUIRE(event.is_message());
        CHECK_FALSE(event.binary);
        const std::string expected = "{\"event\":{\"n\":" + std::to_string(n) + ",\"pad\":\"" +
                                     std::string(static_cast<std::size_t>(size), 'f') +
                                     "\"},\"id\":" + std::to_string(id) + ",\"type\":\"event\"}";
        REQUIRE(event.data == expected);
      }
      CHECK(client.read_result(id)["success"] == true);
    }
  }
}

TEST_CASE("supervisor/ and hassio/ commands are refused locally and never reach HA") {
  Fixture f;
  WsClient client;
  f.authenticate(client);
  client.send_json({{"id", 2}, {"type", "supervisor/api"}, {"endpoint", "/addons"}});
  CHECK(client.read().data == unauthorized_reply(2));
  client.send_json({{"id", 3}, {"type", "hassio/addon/info"}});
  CHECK(client.read().data == unauthorized_reply(3));
  // JSON escapes cannot smuggle the prefix past the filter.
  client.send_text(R"({"id":4,"type":"supervisor\/api"})");
  CHECK(client.read().data == unauthorized_reply(4));
  client.send_text(R"({"id":5,"type":"hass\u0069o/x"})");
  CHECK(client.read().data == unauthorized_reply(5));
  // Batches: denied elements answered locally, the rest forwarded.
  client.send_text(
      R"([{"id":6,"type":"ping"},{"id":7,"type":"hassio/backups"},{"id":8,"type":"ping"}])");
  CHECK(client.read().data == unauthorized_reply(7));
  CHECK(client.read_json() == json({{"id", 6}, {"type", "pong"}}));
  CHECK(client.read_json() == json({{"id", 8}, {"type", "pong"}}));
  client.send_text(R"([{"id":9,"type":"supervisor/x"},{"id":10,"type":"hassio/y"}])");
  CHECK(client.read().data == unauthorized_reply(9));
  CHECK(client.read().data == unauthorized_reply(10));
  // The connection stays usable.
  client.send_json({{"id", 11}, {"type", "ping"}});
  CHECK(client.read_json()["id"] == 11);

  json received = f.fake_received();
  int pings = 0;
  for (const auto& m : received) {
    json items = m.is_array() ? m : json::array({m});
    for (const auto& item : items) {
      std::string type = item.is_object() ? item.value("type", "") : "";
      CHECK(type.rfind("supervisor", 0) != 0);
      CHECK(type.rfind("hassio", 0) != 0);
      if (type == "ping") ++pings;
    }
  }
  CHECK(pings == 3);
}

TEST_CASE("close codes are propagated both ways") {
  Fixture f;
  SECTION("HA closes with 4001 'x' → the client sees 4001 'x'") {
    WsClient client;
    f.authenticate(client);
    client.send_json({{"id", 1}, {"type", "fake/close"}, {"code", 4001}, {"reason", "x"}});
    WsEvent event = client.read();
    INFO(event.describe());
    REQUIRE(event.is_closed());
    CHECK(event.close_code == 4001);
    CHECK(event.close_reason == "x");
  }
  SECTION("the client closes with 4002 'bye' → HA sees 4002 'bye'") {
    WsClient client;
    f.authenticate(client);
    client.close(4002, "bye");
    bool seen = false;
    for (int i = 0; i < 50 && !seen; ++i) {
      for (const auto& m : f.fake_received()) {
        if (m.contains("closed") && m["closed"] == 4002 && m["reason"] == "bye") seen = true;
      }
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(seen);
  }
}

TEST_CASE("a 20 MiB message from HA is delivered (the upstream limit is 64 MiB)") {
  Fixture f;
  WsClient client;
  client.set_read_limit(64 * 1024 * 1024);
  f.authenticate(client);
  const std::size_t size = 20 * 1024 * 1024;
  client.send_json({{"id", 1}, {"type", "fake/big"}, {"size", size}});
  json result = client.read_result(1, std::chrono::seconds(30));
  CHECK(result["result"]["data"].get_ref<const std::string&>().size() == size);
  // Still usable afterwards.
  client.send_json({{"id", 2}, {"type", "ping"}});
  CHECK(client.read_json()["type"] == "pong");
}

TEST_CASE("a client that stops reading gets a bounded queue and then a clean close") {
  Fixture f;
  WsClient slow;
  slow.set_receive_buffer(4096);
  f.authenticate(slow);
  const long rss_before = rss_kb(f.agent().pid());
  // 400 × 256 KiB = 100 MiB offered by HA while the client reads nothing.
  slow.send_json({{"id", 1}, {"type", "fake/flood"}, {"count", 400}, {"size", 256 * 1024}});
  long rss_peak = rss_before;
  for (int i = 0; i < 30; ++i) {
    rss_peak = std::max(rss_peak, rss_kb(f.agent().pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("agent RSS before " << rss_before << " kB, peak " << rss_peak << " kB");
  CHECK(rss_peak - rss_before < 48 * 1024);  // queue limit 16 MiB + buffers, not 100 MiB
  REQUIRE(f.agent().wait_for_log("WS client too slow", std::chrono::seconds(10)));
  // Reading again: whatever was in flight, then the end of the session.
  bool ended = false;
  int messages = 0;
  for (int i = 0; i < 500 && !ended; ++i) {
    WsEvent event = slow.read(std::chrono::seconds(5));
    if (event.kind == WsEvent::Kind::timeout) break;
    if (event.is_closed()) CHECK(event.close_code == 1008);
    ended = event.ended();
    if (event.is_message()) ++messages;
  }
  CHECK(ended);
  CHECK(messages < 400);
  // Others are unaffected.
  WsClient other;
  f.authenticate(other);
}

TEST_CASE("HA dropping the connection mid-session closes the client cleanly") {
  Fixture f;
  WsClient client;
  f.authenticate(client);
  f.fake_command({{"type", "fake/drop_all"}});
  WsEvent event = client.read();
  INFO(event.describe());
  REQUIRE(event.is_closed());
  CHECK(event.close_code == 1011);
  // A new session works once HA is back.
  WsClient again;
  f.authenticate(again);
}

TEST_CASE("an unreachable upstream closes the client with 1011") {
  AgentOptions o;
  o.upstream_url = "http://127.0.0.1:" + std::to_string(free_loopback_port());
  Fixture f(o);
  WsClient client;
  client.connect(f.port());
  expect_closed_with(client, 1011);
}

TEST_CASE("an upstream still connecting is cancelled when the client leaves") {
  // An upstream that accepts TCP but never answers the WebSocket handshake.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  AgentOptions o;
  o.upstream_url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  Fixture f(o);
  WsClient client;
  client.connect(f.port());
  boost::asio::ip::tcp::socket upstream(ioc);
  silent.accept(upstream);
  client.abort();
  // The agent closes its side: our read ends (after the handshake request bytes).
  timeval tv{5, 0};
  setsockopt(upstream.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  boost::system::error_code ec;
  const auto start = std::chrono::steady_clock::now();
  while (!ec) upstream.read_some(boost::asio::buffer(buf), ec);
  CHECK(ec == boost::asio::error::eof);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
}

TEST_CASE("the kiosk's 1-second WebSocket step, repeated") {
  Fixture f;
  for (int round = 0; round < 10; ++round) {
    const auto start = std::chrono::steady_clock::now();
    WsClient kiosk;
    kiosk.connect(f.port());
    REQUIRE(kiosk.read_json()["type"] == "auth_required");
    kiosk.send_json({{"type", "auth"}, {"access_token", kHashedHubToken}});
    REQUIRE(kiosk.read_json()["type"] == "auth_ok");
    kiosk.send_json({{"id", 1}, {"type", "config/entity_registry/list"}});
    json result = kiosk.read_result(1);
    REQUIRE(result["success"] == true);
    kiosk.close();
    // Half the kiosk's cadence. Under emulation (time_scale.hpp) the budget is scaled: every
    // process of the step runs under qemu there, so the time measures the emulator.
    CHECK(std::chrono::steady_clock::now() - start <
          dinodia::testing::scaled(std::chrono::milliseconds(500)));
  }
  f.expect_no_secrets_logged();
}

TEST_CASE("ws_auth_mode decides the upstream credential") {
  SECTION("ha: ha_access_token is used (here it is the one HA accepts)") {
    AgentOptions o;
    o.ws_auth_mode = "ha";
    o.ha_access_token = kSupervisorToken;
    o.agent_supervisor_token = "wrong-supervisor-token";
    Fixture f(o);
    WsClient client;
    f.authenticate(client);
  }
  SECTION("auto: a rejected first credential is retried with the next on a fresh connection") {
    AgentOptions o;
    o.ws_auth_mode = "auto";
    o.ha_access_token = kSupervisorToken;
    o.agent_supervisor_token = "wrong-supervisor-token";
    Fixture f(o);
    WsClient client;
    client.connect(f.port());
    CHECK(client.read_json()["type"] == "auth_required");
    client.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
    // No intermediate auth_invalid: clients give up on the first one they see.
    CHECK(client.read_json()["type"] == "auth_ok");
    client.send_json({{"id", 1}, {"type", "ping"}});
    CHECK(client.read_json()["type"] == "pong");
  }
  SECTION("ha without ha_access_token: the legacy 'missing HA auth token' reply") {
    AgentOptions o;
    o.ws_auth_mode = "ha";
    Fixture f(o);
    WsClient client;
    client.connect(f.port());
    CHECK(client.read_json()["type"] == "auth_required");
    client.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
    WsEvent event = client.read();
    CHECK(event.data ==
          R"({"type":"auth_invalid","message":"Hub agent is missing HA auth token."})");
    CHECK(client.read().ended());
  }
  SECTION("supervisor with a token HA rejects: HA's auth_invalid reaches the client") {
    AgentOptions o;
    o.agent_supervisor_token = "wrong-supervisor-token";
    o.ha_access_token = kHaAccessToken;
    Fixture f(o);
    WsClient client;
    client.connect(f.port());
    CHECK(client.read_json()["type"] == "auth_required");
    client.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
    json invalid = client.read_json();
    CHECK(invalid["type"] == "auth_invalid");
    CHECK(client.read().ended());
    f.expect_no_secrets_logged();
  }
}

// ---- a hostile device on the home network (docs/lan-bridge.md, "Before authentication")

TEST_CASE("no upstream WebSocket exists for a client that has not proved a hub token") {
  Fixture f;
  SECTION("just after start, many clients at once: at most one learns HA's greeting") {
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < 20; ++i) {
      clients.push_back(std::make_unique<WsClient>());
      clients.back()->connect(f.port());
    }
    for (auto& c : clients) CHECK(c->read_json()["type"] == "auth_required");
    CHECK(f.fake_stats()["ws_connections_total"] <= 1);
  }
  SECTION("afterwards: greeted with HA's own bytes, and nothing upstream until auth") {
    std::string greeting;
    {
      WsClient first;
      first.connect(f.port());
      WsEvent event = first.read();
      REQUIRE(event.is_message());
      greeting = event.data;
      first.send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
      REQUIRE(first.read_json()["type"] == "auth_ok");
      first.close();
    }
    REQUIRE(f.wait_fake_ws_open(0));
    const int total_before = f.fake_stats()["ws_connections_total"];
    std::vector<std::unique_ptr<WsClient>> clients;
    for (int i = 0; i < 20; ++i) {
      clients.push_back(std::make_unique<WsClient>());
      clients.back()->connect(f.port());
      clients.back()->send_json({{"id", 1}, {"type", "ping"}});  // buffered, not a login
    }
    for (auto& c : clients) {
      WsEvent event = c->read();
      REQUIRE(event.is_message());
      CHECK(event.data == greeting);  // HA's auth_required, byte for byte
    }
    json stats = f.fake_stats();
    CHECK(stats["ws_connections_total"] == total_before);
    CHECK(stats["ws_connections_open"] == 0);
    // The first to log in gets its own upstream connection, and its buffered ping answered.
    clients[0]->send_json({{"type", "auth"}, {"access_token", kHashedHubToken}});
    json ok = clients[0]->read_json();
    CHECK(ok["type"] == "auth_ok");
    CHECK(ok["ha_version"] == "2026.11.0");
    CHECK(clients[0]->read_json() == json({{"id", 1}, {"type", "pong"}}));
    CHECK(f.fake_stats()["ws_connections_total"] == total_before + 1);
  }
}

TEST_CASE(
    "with the kiosk relief on, the agent's own event stream teaches the relay HA's greeting") {
  // What a home runs (kiosk_relief is on by default): not even the first client after a start
  // makes the relay connect upstream before it has proved a hub token.
  AgentOptions o;
  o.kiosk_relief = true;
  Fixture f(o);
  REQUIRE(f.agent().wait_for_log("Kiosk relief: Home Assistant event stream up",
                                 std::chrono::seconds(10)));
  REQUIRE(f.fake_stats()["ws_connections_total"] == 1);  // the event stream alone
  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<std::string> greetings;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    clients.back()->connect(f.port());
    WsEvent event = clients.back()->read();
    REQUIRE(event.is_message());
    greetings.push_back(event.data);
    clients.back()->send_json({{"id", 1}, {"type", "ping"}});  // buffered, not a login
  }
  json stats = f.fake_stats();
  CHECK(stats["ws_connections_total"] == 1);
  CHECK(stats["ws_connections_open"] == 1);
  // Each greeting is Home Assistant's own auth_required, byte for byte.
  WsClient direct;
  direct.connect(f.fake_port(), "/core/api/websocket");
  WsEvent direct_greeting = direct.read();
  REQUIRE(direct_greeting.is_message());
  direct.close();
  for (const auto& greeting : greetings) CHECK(greeting == direct_greeting.data);
  // A client that logs in gets its own upstream connection then, and its buffered ping answered.
  clients[0]->send_json({{"type", "auth"}, {"access_token", kHashedHubToken}});
  CHECK(clients[0]->read_json()["type"] == "auth_ok");
  CHECK(clients[0]->read_json() == json({{"id", 1}, {"type", "pong"}}));
  f.expect_no_secrets_logged();
}

TEST_CASE("a client without a hub token may hold only a few KiB before auth") {
  Fixture f;
  SECTION("one message over 4 KiB closes with 1009") {
    WsClient client;
    client.connect(f.port());
    REQUIRE(client.read_json()["type"] == "auth_required");
    try {
      client.send_text(R"({"id":1,"type":"x","pad":")" + std::string(8 * 1024, 'a') + "\"}");
    } catch (const std::runtime_error&) {
    }
    WsEvent event = client.read();
    INFO(event.describe());
    REQUIRE(event.ended());
    if (event.is_closed()) CHECK(event.close_code == 1009);
  }
  SECTION("the 9th message closes with 1008") {
    WsClient client;
    client.connect(f.port());
    REQUIRE(client.read_json()["type"] == "auth_required");
    for (int i = 1; i <= 8; ++i) client.send_json({{"type", "ping"}, {"id", i}});
    CHECK(client.read(std::chrono::milliseconds(300)).kind == WsEvent::Kind::timeout);
    client.send_json({{"type", "ping"}, {"id", 9}});
    expect_closed_with(client, 1008);
  }
  WsClient ok;
  f.authenticate(ok);
}

TEST_CASE("all unauthenticated clients together share one pre-auth budget (128 KiB)") {
  Fixture f;
  // 4 KiB each, the most one unauthenticated client may hold: 32 of them fill the budget.
  const std::string padded =
      R"({"id":1,"type":"ping","pad":")" + std::string(4096 - 31, 'a') + "\"}";
  REQUIRE(padded.size() == 4096);
  std::vector<std::unique_ptr<WsClient>> holders;
  for (int i = 0; i < 32; ++i) {
    holders.push_back(std::make_unique<WsClient>());
    holders.back()->connect(f.port());
    REQUIRE(holders.back()->read_json()["type"] == "auth_required");
    holders.back()->send_text(padded);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  WsClient refused;
  refused.connect(f.port());
  REQUIRE(refused.read_json()["type"] == "auth_required");
  refused.send_text(padded);
  expect_closed_with(refused, 1013);
  for (auto& h : holders)
    CHECK(h->read(std::chrono::milliseconds(10)).kind == WsEvent::Kind::timeout);

  // A holder that logs in takes its bytes off the budget (and gets its ping answered) ...
  holders[0]->send_json({{"type", "auth"}, {"access_token", kPlainHubToken}});
  CHECK(holders[0]->read_json()["type"] == "auth_ok");
  CHECK(holders[0]->read_result(1)["type"] == "pong");
  // ... so the next unauthenticated client has room again.
  WsClient next;
  next.connect(f.port());
  REQUIRE(next.read_json()["type"] == "auth_required");
  next.send_text(padded);
  CHECK(next.read(std::chrono::milliseconds(500)).kind == WsEvent::Kind::timeout);
  // Authenticated clients never depend on the budget.
  WsClient kiosk;
  f.authenticate(kiosk);
  kiosk.send_json({{"id", 2}, {"type", "ping"}});
  CHECK(kiosk.read_result(2)["type"] == "pong");
}

TEST_CASE("a frame the filter cannot parse is refused with 1007, never forwarded") {
  Fixture f;
  for (const std::string frame :
       {R"({"id":6,"type":"supervisor/api","endpoint":"/host/reboot","x":"\ud800"})",
        R"({"id":6,"type":"supervisor/api","endpoint":"/host/reboot","x":1e999})"}) {
    INFO(frame);
    WsClient client;
    f.authenticate(client);
    client.send_text(frame);
    expect_closed_with(client, 1007);
  }
  json raw = f.fake_command({{"type", "fake/received_raw"}})["result"];
  for (const auto& m : raw) CHECK(m.get<std::string>().find("supervisor") == std::string::npos);
  // What the apps send is untouched (kiosk: haWebSocket.ts; call_service with a target).
  WsClient kiosk;
  f.authenticate(kiosk);
  kiosk.send_text(R"({"id":1,"type":"config/entity_registry/list"})");
  CHECK(kiosk.read_result(1)["success"] == true);
  kiosk.send_text(
      R"({"id":2,"type":"call_service","domain":"light","service":"turn_on","target":{"entity_id":"light.kitchen"},"service_data":{"brightness_pct":40}})");
  CHECK(kiosk.read_result(2)["success"] == true);
}

TEST_CASE("call_service to the hassio domain is refused unless allow_hassio_domain is set") {
  const std::string reboot =
      R"({"id":3,"type":"call_service","domain":"hassio","service":"host_reboot"})";
  const std::string mixed_case =
      R"({"id":4,"type":"call_service","domain":"HaSsIo","service":"addon_stop","service_data":{"addon":"core_ssh"}})";
  auto hassio_calls = [](Fixture& f) {
    int n = 0;
    for (const auto& m : f.fake_received()) {
      json items = m.is_array() ? m : json::array({m});
      for (const auto& item : items) {
        if (item.is_object() && item.value("type", "") == "call_service" &&
            item.contains("domain") && item["domain"].is_string()) {
          std::string d = item["domain"];
          for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (d == "hassio") ++n;
        }
      }
    }
    return n;
  };
  SECTION("by default: the same refusal as supervisor/ and hassio/ commands") {
    Fixture f;
    WsClient client;
    f.authenticate(client);
    client.send_text(reboot);
    CHECK(client.read().data == unauthorized_reply(3));
    client.send_text(mixed_case);
    CHECK(client.read().data == unauthorized_reply(4));
    client.send_text(
        R"([{"id":5,"type":"ping"},{"id":6,"type":"call_service","domain":"hass\u0069o","service":"host_reboot"}])");
    CHECK(client.read().data == unauthorized_reply(6));
    CHECK(client.read_json() == json({{"id", 5}, {"type", "pong"}}));
    CHECK(hassio_calls(f) == 0);
  }
  SECTION("allow_hassio_domain: true in options.json lets them through") {
    AgentOptions o;
    o.allow_hassio_domain = true;
    Fixture f(o);
    WsClient client;
    f.authenticate(client);
    client.send_text(reboot);
    CHECK(client.read_result(3)["success"] == true);
    client.send_text(mixed_case);
    CHECK(client.read_result(4)["success"] == true);
    CHECK(hassio_calls(f) == 2);
  }
}

TEST_CASE("execute_script with a hassio action is refused unless allow_hassio_domain is set") {
  const std::string reboot =
      R"({"id":3,"type":"execute_script","sequence":[{"action":"hassio.host_reboot"}]})";
  const std::string nested =
      R"({"id":4,"type":"execute_script","sequence":[{"choose":[{"conditions":[],"sequence":[{"service":"HASSIO.addon_stop","data":{"addon":"core_ssh"}}]}]}]})";
  const std::string lights =
      R"({"id":8,"type":"execute_script","sequence":[{"action":"light.turn_on","target":{"entity_id":"light.hassio"}}]})";
  auto scripts = [](Fixture& f) {
    int n = 0;
    for (const auto& m : f.fake_received()) {
      json items = m.is_array() ? m : json::array({m});
      for (const auto& item : items) {
        if (item.is_object() && item.value("type", "") == "execute_script") ++n;
      }
    }
    return n;
  };
  SECTION("by default: the same refusal as call_service to the hassio domain") {
    Fixture f;
    WsClient client;
    f.authenticate(client);
    client.send_text(reboot);
    CHECK(client.read().data == unauthorized_reply(3));
    client.send_text(nested);
    CHECK(client.read().data == unauthorized_reply(4));
    client.send_text(
        R"([{"id":6,"type":"ping"},{"id":7,"type":"execute_script","sequence":[{"if":[],"then":[],"else":[{"action":"hass\u0069o.host_shutdown"}]}]}])");
    CHECK(client.read().data == unauthorized_reply(7));
    CHECK(client.read_json() == json({{"id", 6}, {"type", "pong"}}));
    CHECK(scripts(f) == 0);
    // A script without one goes through (hassio in an entity id is no action).
    client.send_text(lights);  // ids keep increasing: 6 reached Home Assistant
    CHECK(client.read_result(8)["success"] == true);
    CHECK(scripts(f) == 1);
  }
  SECTION("allow_hassio_domain: true in options.json lets them through") {
    AgentOptions o;
    o.allow_hassio_domain = true;
    Fixture f(o);
    WsClient client;
    f.authenticate(client);
    client.send_text(reboot);
    CHECK(client.read_result(3)["success"] == true);
    client.send_text(nested);
    CHECK(client.read_result(4)["success"] == true);
    CHECK(scripts(f) == 2);
  }
}
