// The WebSocket side of the kiosk-load relief, function by function: which commands are answered
// from memory, how a held answer becomes another session's frame, and which commands count as
// writes (docs/lan-bridge.md#one-shot-websocket-sessions).
#include <catch2/catch.hpp>
#include <string>

#include "ha_bridge/detail/ws_relief_command.hpp"
#include "ha_bridge/detail/ws_write_tracker.hpp"

using namespace dinodia::ha_bridge::detail;

TEST_CASE("ws_relief_command: exactly the kiosk's registry list commands") {
  const auto kiosk = ws_relief_command(R"({"id":1,"type":"config/entity_registry/list"})");
  REQUIRE(kiosk);
  CHECK(kiosk->id == 1);
  CHECK(kiosk->key == "WS config/entity_registry/list");
  const auto spaced = ws_relief_command(R"({ "type" : "config/area_registry/list", "id" : 42 })");
  REQUIRE(spaced);
  CHECK(spaced->id == 42);
  CHECK(spaced->key == "WS config/area_registry/list");
  for (const char* type : {"config/device_registry/list", "config/floor_registry/list",
                           "config/label_registry/list"}) {
    CHECK(ws_relief_command(std::string(R"({"id":3,"type":")") + type + R"("})"));
  }

  CHECK_FALSE(ws_relief_command(R"({"id":1,"type":"get_states"})"));
  CHECK_FALSE(ws_relief_command(R"({"id":1,"type":"config/entity_registry/list_for_display"})"));
  CHECK_FALSE(ws_relief_command(R"({"id":1,"type":"config/entity_registry/list","x":1})"));
  CHECK_FALSE(ws_relief_command(R"({"id":0,"type":"config/entity_registry/list"})"));
  CHECK_FALSE(ws_relief_command(R"({"id":-1,"type":"config/entity_registry/list"})"));
  CHECK_FALSE(ws_relief_command(R"({"id":1.5,"type":"config/entity_registry/list"})"));
  CHECK_FALSE(ws_relief_command(R"({"id":"1","type":"config/entity_registry/list"})"));
  CHECK_FALSE(ws_relief_command(R"({"type":"config/entity_registry/list"})"));
  CHECK_FALSE(ws_relief_command(R"([{"id":1,"type":"config/entity_registry/list"}])"));
  CHECK_FALSE(ws_relief_command(R"({"id":1,"type":"config/entity_registry/list")"));
  // An escaped slash is the same string to every JSON parser, Home Assistant's included.
  CHECK(ws_relief_command(R"({"id":1,"type":"config\/entity_registry\/list"})"));
}

TEST_CASE("ws_result_after_id and ws_result_with_id: another session's frame, byte for byte") {
  const std::string core = R"({"id":12,"type":"result","success":true,"result":[{"a":1}]})";
  CHECK(ws_answers_id(core, 12));
  CHECK_FALSE(ws_answers_id(core, 1));
  CHECK_FALSE(ws_answers_id(core, 120));
  const auto after = ws_result_after_id(core, 12);
  REQUIRE(after);
  CHECK(*after == R"(,"type":"result","success":true,"result":[{"a":1}]})");
  CHECK(ws_result_with_id(12, *after) == core);
  CHECK(ws_result_with_id(7, *after) ==
        R"({"id":7,"type":"result","success":true,"result":[{"a":1}]})");

  // Core's entity and device registry lists: a prefix written by hand, with spaces.
  const std::string list =
      R"({"id":4,"type": "result","success":true,"result": [{"a":1},{"b":2}]})";
  REQUIRE(ws_result_after_id(list, 4));
  CHECK(ws_result_with_id(9, *ws_result_after_id(list, 4)) ==
        R"({"id":9,"type": "result","success":true,"result": [{"a":1},{"b":2}]})");

  // Another key order (nlohmann's sorted keys), id first still: parsed to know it is a success,
  // where Core's layouts above are known from their first bytes.
  const std::string sorted = R"({"id":3,"result":[],"success":true,"type":"result"})";
  REQUIRE(ws_result_after_id(sorted, 3));
  CHECK(ws_result_with_id(3, *ws_result_after_id(sorted, 3)) == sorted);

  // Not held: an error, another id, an id not first, leading zeros, an event, not JSON.
  CHECK_FALSE(ws_result_after_id(
      R"({"id":12,"type":"result","success":false,"error":{"code":"x","message":"y"}})", 12));
  CHECK_FALSE(ws_result_after_id(R"({"type":"result","id":12,"success":true,"result":1})", 12));
  CHECK_FALSE(ws_result_after_id(R"({"id":012,"type":"result","success":true,"result":1})", 12));
  CHECK_FALSE(ws_result_after_id(R"({"id":12,"type":"event","event":{"success":true}})", 12));
  CHECK_FALSE(ws_result_after_id(R"({"id":12,"type":"result","success":true,"result":)", 12));
  CHECK_FALSE(ws_result_after_id(R"({"id":12})", 12));
}

TEST_CASE("WsWriteTracker: writes are reported when sent and when answered") {
  WsWriteTracker tracker;
  CHECK_FALSE(tracker.client_frame(R"({"id":1,"type":"config/entity_registry/list"})"));
  CHECK_FALSE(tracker.client_frame(R"({"id":2,"type":"subscribe_events","event_type":"x"})"));
  CHECK_FALSE(tracker.client_frame(R"({"id":3,"type":"get_states"})"));
  CHECK_FALSE(tracker.client_frame(R"({"id":4,"type":"render_template","template":"{{1}}"})"));
  CHECK_FALSE(tracker.upstream_frame(R"({"id":1,"type":"result","success":true,"result":[]})"));

  CHECK(tracker.client_frame(R"({"id":5,"type":"call_service","domain":"light"})"));
  CHECK(tracker.client_frame(R"({"id":6,"type":"config/entity_registry/update"})"));
  CHECK_FALSE(tracker.upstream_frame(R"({"id":2,"type":"event","event":{}})"));
  CHECK(tracker.upstream_frame(R"({"id":6,"type":"result","success":true,"result":{}})"));
  CHECK_FALSE(tracker.upstream_frame(R"({"id":6,"type":"result","success":true,"result":{}})"));
  // In a coalesced batch.
  CHECK(tracker.upstream_frame(R"([{"id":2,"type":"event"},{"id":5,"type":"result"}])"));
  CHECK_FALSE(tracker.upstream_frame(R"({"id":5,"type":"result","success":true,"result":{}})"));

  // A batch with one write; a frame that is not JSON; a type in a nested object does not count.
  CHECK(tracker.client_frame(R"([{"id":7,"type":"ping"},{"id":8,"type":"call_service"}])"));
  CHECK(tracker.upstream_frame(R"({"id":8,"type":"result","success":true,"result":null})"));
  CHECK(tracker.client_frame("not json"));
  CHECK(tracker.upstream_frame(R"({"id":99,"type":"result"})"));  // the unknown write's answer
  CHECK(tracker.client_frame(
      R"({"id":9,"service_data":{"type":"get_states"},"type":"call_service"})"));
}
