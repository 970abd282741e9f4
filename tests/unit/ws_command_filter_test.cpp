// The client→HA frame inspection used by the WebSocket relay (ha_bridge/detail/ws_command_filter).
#include "ha_bridge/detail/ws_command_filter.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "ha_bridge/detail/names_hassio_action.hpp"

using dinodia::ha_bridge::detail::ClientFrameVerdict;
using dinodia::ha_bridge::detail::inspect_client_text;
using dinodia::ha_bridge::detail::names_hassio_action;
using dinodia::ha_bridge::detail::text_may_name_hassio_action;
using Action = ClientFrameVerdict::Action;

namespace {
const std::string kDenied7 =
    R"({"id":7,"type":"result","success":false,"error":{"code":"unauthorized","message":"Unauthorized"}})";
}

TEST_CASE("ordinary commands are forwarded unchanged and unparsed") {
  for (const char* frame : {R"({"id":1,"type":"ping"})", R"([{"id":1,"type":"get_states"}])",
                            "not json at all", R"({"id":2,"type":"supervisor_like"})"}) {
    auto v = inspect_client_text(frame);
    CHECK(v.action == Action::forward_original);
    CHECK(v.local_replies.empty());
  }
}

TEST_CASE("supervisor/ and hassio/ commands are answered locally, escapes included") {
  for (const char* frame :
       {R"({"id":7,"type":"supervisor/info"})", R"({"type":"hassio/addon/info","id":7})",
        R"({"id":7,"type":"supervisor\/info"})", R"({"id":7,"type":"\u0068assio/x"})"}) {
    INFO(frame);
    auto v = inspect_client_text(frame);
    CHECK(v.action == Action::drop);
    REQUIRE(v.local_replies.size() == 1);
    CHECK(v.local_replies[0] == kDenied7);
  }
  // Without an id the reply carries null, like the Supervisor's msg.get("id").
  auto v = inspect_client_text(R"({"type":"hassio/x"})");
  REQUIRE(v.local_replies.size() == 1);
  CHECK(v.local_replies[0].rfind(R"({"id":null,)", 0) == 0);
}

TEST_CASE("batches lose only their denied elements") {
  auto v = inspect_client_text(
      R"([{"id":6,"type":"ping"},{"id":7,"type":"hassio/backups"},{"id":8,"type":"ping"}])");
  CHECK(v.action == Action::forward_rewritten);
  CHECK(v.rewritten == R"([{"id":6,"type":"ping"},{"id":8,"type":"ping"}])");
  REQUIRE(v.local_replies.size() == 1);
  CHECK(v.local_replies[0] == kDenied7);

  auto all = inspect_client_text(R"([{"id":1,"type":"supervisor/a"},{"id":2,"type":"hassio/b"}])");
  CHECK(all.action == Action::drop);
  CHECK(all.local_replies.size() == 2);

  auto none = inspect_client_text(R"([ {"id":1, "type":"auth_something"} ])");
  CHECK(none.action == Action::forward_original);
}

TEST_CASE("client auth messages are recognised and never forwarded") {
  auto v = inspect_client_text(R"({"type":"auth","access_token":"  tok  "})");
  CHECK(v.action == Action::client_auth);
  CHECK(v.access_token == "  tok  ");  // the token registry trims
  auto odd = inspect_client_text(R"({"type":"auth","access_token":42})");
  CHECK(odd.action == Action::client_auth);
  CHECK(odd.access_token.empty());
}

TEST_CASE("deeply nested frames that need inspection are dropped, not recursed into") {
  using dinodia::ha_bridge::detail::ClientFrameVerdict;
  using dinodia::ha_bridge::detail::inspect_client_text;
  const std::string nest(200000, '['), unnest(200000, ']');
  auto v = inspect_client_text(R"({"type":"supervisor/x","id":)" + nest + unnest + "}");
  CHECK(v.action == ClientFrameVerdict::Action::drop);
  v = inspect_client_text(R"([{"type":"hassio/x"},)" + nest + unnest + "]");
  CHECK(v.action == ClientFrameVerdict::Action::drop);
  // Ordinary nesting still gets the normal treatment.
  v = inspect_client_text(R"({"type":"supervisor/info","id":7,"data":[[[1]]]})");
  CHECK(v.action == ClientFrameVerdict::Action::drop);
  REQUIRE(v.local_replies.size() == 1);
  CHECK(v.local_replies[0].find(R"("id":7)") != std::string::npos);
}

TEST_CASE("a frame that needs inspection but does not parse is refused, never forwarded") {
  for (const char* frame :
       {R"({"id":7,"type":"supervisor/api","x":"\ud800"})",
        R"({"id":7,"type":"supervisor/api","n":1e999})", R"({"id":7,"type":"hassio/x",})",
        R"({"type":"auth","access_token":"\udc00"})",
        R"({"type":"call_service","domain":"hassio","service_data":{"x":1e400}})"}) {
    INFO(frame);
    auto v = inspect_client_text(frame);
    CHECK(v.action == Action::refuse);
    CHECK(v.local_replies.empty());
    CHECK(v.rewritten.empty());
  }
}

TEST_CASE("call_service with domain hassio, in any case Core accepts, is refused by default") {
  for (const char* frame :
       {R"({"id":7,"type":"call_service","domain":"hassio","service":"host_reboot"})",
        R"({"type":"call_service","domain":"HaSsIo","service":"addon_stop","id":7})",
        R"({"id":7,"type":"call_service","domain":"h\u0061ssio","service":"host_reboot"})"}) {
    INFO(frame);
    auto v = inspect_client_text(frame);
    CHECK(v.action == Action::drop);
    REQUIRE(v.local_replies.size() == 1);
    CHECK(v.local_replies[0] == kDenied7);
    CHECK(inspect_client_text(frame, /*allow_hassio_domain=*/true).action ==
          Action::forward_original);
  }
  auto batch = inspect_client_text(
      R"([{"id":6,"type":"ping"},{"id":7,"type":"call_service","domain":"HASSIO","service":"x"}])");
  CHECK(batch.action == Action::forward_rewritten);
  CHECK(batch.rewritten == R"([{"id":6,"type":"ping"}])");
  // Other domains, and hassio anywhere but the domain, go through.
  for (const char* frame :
       {R"({"id":1,"type":"call_service","domain":"light","service":"turn_on"})",
        R"({"id":1,"type":"call_service","domain":"script","service":"hassio"})",
        R"({"id":1,"type":"call_service","domain":"hassio_x","service":"y"})",
        R"({"id":1,"type":"get_states","domain":"hassio"})"}) {
    INFO(frame);
    CHECK(inspect_client_text(frame).action == Action::forward_original);
  }
}

TEST_CASE("names_hassio_action: a service or action step of the hassio domain, at any depth") {
  using nlohmann::json;
  for (
      const char* text : {
          R"([{"action":"hassio.host_reboot"}])",
          R"([{"service":"hassio.addon_stop","data":{"addon":"core_ssh"}}])",
          R"([{"service":"HASSIO.host_reboot"}])",
          R"([{"action":"HaSsIo.host_shutdown"}])",
          R"([{"service_template":"hassio.host_reboot"}])",
          R"([{"action":"h\u0061ssio.host_reboot"}])",
          R"([{"action":"hassio"}])",  // no service: still the domain
          R"({"alias":"x","actions":[{"choose":[{"conditions":[],"sequence":[{"action":"hassio.backup_full"}]}],"default":[]}]})",
          R"({"sequence":[{"if":[],"then":[{"delay":1}],"else":[{"service":"hassio.host_reboot"}]}]})",
          R"({"sequence":[{"parallel":[{"sequence":[{"action":"hassio.addon_restart"}]}]}]})",
          R"({"sequence":[{"repeat":{"count":2,"sequence":[{"action":"hassio.addon_start"}]}}]})",
          R"({"trigger":[],"action":[{"action":"light.turn_on"},{"service":"hassio.host_reboot"}]})",
      }) {
    INFO(text);
    CHECK(names_hassio_action(json::parse(text)));
    CHECK(text_may_name_hassio_action(text));
  }
  for (const char* text : {
           R"([{"action":"light.turn_on","target":{"entity_id":"light.hassio"}}])",
           R"([{"service":"hassio_x.y"},{"action":"xhassio.y"},{"action":"hassi.o"}])",
           R"([{"action":"script.hassio"},{"event":"hassio.host_reboot"}])",
           R"([{"data":{"message":"hassio.host_reboot"}},{"alias":"hassio.host_reboot"}])",
           R"([{"action":["hassio.host_reboot"]},{"service":{"x":1}},{"action":42}])",
           R"({"alias":"Morning","trigger":[],"action":[{"action":"cover.open_cover"}]})",
           R"([])",
       }) {
    INFO(text);
    CHECK_FALSE(names_hassio_action(json::parse(text)));
    CHECK_FALSE(text_may_name_hassio_action(text));
  }
}

TEST_CASE("names_hassio_action: too deep or unreadable counts as naming one (fail closed)") {
  using dinodia::ha_bridge::detail::kMaxInspectedDepth;
  using nlohmann::json;
  auto nested = [](int depth) {
    std::string text;
    for (int i = 0; i < depth; ++i) text += R"({"sequence":)";
    text += "1";
    for (int i = 0; i < depth; ++i) text += "}";
    return text;
  };
  CHECK_FALSE(text_may_name_hassio_action(nested(kMaxInspectedDepth)));
  CHECK_FALSE(names_hassio_action(json::parse(nested(kMaxInspectedDepth))));
  CHECK(text_may_name_hassio_action(nested(kMaxInspectedDepth + 1)));
  CHECK(names_hassio_action(json::parse(nested(kMaxInspectedDepth + 1))));
  for (const char* text : {"", "not json", R"({"action":"light.turn_on")",
                           R"({"action":"light.turn_on","x":1e999})", R"({"x":"\ud800"})"}) {
    INFO(text);
    CHECK(text_may_name_hassio_action(text));
  }
}

TEST_CASE("execute_script with a hassio action is refused by default, like call_service") {
  for (
      const char* frame : {
          R"({"id":7,"type":"execute_script","sequence":[{"action":"hassio.host_reboot"}]})",
          R"({"id":7,"type":"execute_script","sequence":[{"service":"HASSIO.host_reboot"}]})",
          R"({"type":"execute_script","id":7,"sequence":[{"choose":[{"conditions":[],"sequence":[{"action":"hassio.addon_stop"}]}]}]})",
          R"({"id":7,"type":"execute_script","sequence":[{"action":"h\u0061ssio.host_reboot"}]})",
          R"({"id":7,"type":"execute\u005fscript","sequence":[{"action":"hassio.host_reboot"}]})",
      }) {
    INFO(frame);
    auto v = inspect_client_text(frame);
    CHECK(v.action == Action::drop);
    REQUIRE(v.local_replies.size() == 1);
    CHECK(v.local_replies[0] == kDenied7);
    CHECK(inspect_client_text(frame, /*allow_hassio_domain=*/true).action ==
          Action::forward_original);
  }
  auto batch = inspect_client_text(
      R"([{"id":6,"type":"ping"},{"id":7,"type":"execute_script","sequence":[{"action":"hassio.x"}]}])");
  CHECK(batch.action == Action::forward_rewritten);
  CHECK(batch.rewritten == R"([{"id":6,"type":"ping"}])");
  REQUIRE(batch.local_replies.size() == 1);
  CHECK(batch.local_replies[0] == kDenied7);
  // Too deep to take apart: dropped whole, as any frame that needs inspection.
  std::string deep = R"({"id":7,"type":"execute_script","sequence":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  deep += R"({"action":"hassio.host_reboot"})";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}";
  CHECK(inspect_client_text(deep).action == Action::drop);
  // Other actions, and hassio anywhere but an action's domain, go through unparsed or parsed.
  for (
      const char* frame : {
          R"({"id":1,"type":"execute_script","sequence":[{"action":"light.turn_on"}]})",
          R"({"id":1,"type":"execute_script","sequence":[{"action":"light.turn_on","target":{"entity_id":"light.hassio"}}]})",
          R"({"id":1,"type":"subscribe_trigger","trigger":{"action":"hassio.x"}})",
      }) {
    INFO(frame);
    CHECK(inspect_client_text(frame).action == Action::forward_original);
  }
}
