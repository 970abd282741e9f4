// Differential fuzzing of the WebSocket command filter (ha_bridge/detail/ws_command_filter.hpp,
// docs/lan-bridge.md): every client frame is either refused, or forwarded and read the same way
// by a second, independent JSON parser (Boost.JSON) standing in for Core's.
//
// The filter parses with nlohmann::json, and only frames a cheap scan cannot rule out. Core
// parses with another library. A frame the two parsers read differently could carry a denied
// command (supervisor/…, hassio/…, call_service to the hassio domain, execute_script with a
// hassio action) past the filter: this
// target reads each forwarded frame with Boost.JSON, as Core would, and checks that it holds
// nothing the filter would have refused, and that where both parsers read it they agree on
// every command's type, domain and hassio action. Duplicate keys: the last one counts in nlohmann,
// Boost.JSON and Python alike. Both filter settings (allow_hassio_domain false and true) run per
// input.
#include <algorithm>
#include <boost/json/src.hpp>  // header-only Boost.JSON, compiled into this target only
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "ha_bridge/detail/ws_command_filter.hpp"

namespace {

namespace bj = boost::json;
using dinodia::ha_bridge::detail::ClientFrameVerdict;
using dinodia::ha_bridge::detail::inspect_client_text;
using dinodia::ha_bridge::detail::is_denied_ws_type;
using dinodia::ha_bridge::detail::is_hassio_domain;
using Action = ClientFrameVerdict::Action;

// What matters of one command: its type, for call_service its domain, and for execute_script
// whether it names a hassio action.
struct Command {
  std::optional<std::string> type;
  std::optional<std::string> domain;
  bool hassio_action = false;
  bool operator==(const Command&) const = default;
};

// The rule of ha_bridge/detail/names_hassio_action.hpp, written again for each parser's values
// (without its depth limit: a deeper frame is dropped before it is taken apart).
bool is_action_key(std::string_view key) {
  return key == "service" || key == "action" || key == "service_template";
}
bool names_hassio(std::string_view service) {
  return is_hassio_domain(service.substr(0, service.find('.')));
}

bool has_hassio_action(const bj::value& v) {
  if (const bj::object* o = v.if_object()) {
    for (const auto& member : *o) {
      const bj::value& m = member.value();
      const std::string_view key(member.key().data(), member.key().size());
      if (m.is_string() && is_action_key(key) &&
          names_hassio(std::string_view(m.get_string().data(), m.get_string().size()))) {
        return true;
      }
      if (has_hassio_action(m)) return true;
    }
  } else if (const bj::array* a = v.if_array()) {
    for (const auto& element : *a) {
      if (has_hassio_action(element)) return true;
    }
  }
  return false;
}

bool has_hassio_action(const nlohmann::json& v) {
  if (v.is_object()) {
    for (const auto& [key, m] : v.items()) {
      if (m.is_string() && is_action_key(key) && names_hassio(m.get_ref<const std::string&>())) {
        return true;
      }
      if (has_hassio_action(m)) return true;
    }
  } else if (v.is_array()) {
    for (const auto& element : v) {
      if (has_hassio_action(element)) return true;
    }
  }
  return false;
}

// Core's JSON library refuses nesting beyond 1024 levels; deeper frames never reach a handler.
constexpr std::size_t kCoreMaxDepth = 1024;

std::optional<bj::value> parse_like_core(std::string_view text) {
  bj::parse_options options;
  options.max_depth = kCoreMaxDepth;
  boost::system::error_code ec;
  bj::value parsed = bj::parse(bj::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return std::nullopt;
  return parsed;
}

Command command_of(const bj::value& v) {
  Command c;
  const bj::object* o = v.if_object();
  if (o == nullptr) return c;
  if (auto it = o->find("type"); it != o->end() && it->value().is_string()) {
    c.type = std::string(it->value().get_string());
  }
  if (auto it = o->find("domain"); it != o->end() && it->value().is_string()) {
    c.domain = std::string(it->value().get_string());
  }
  c.hassio_action = c.type == std::optional<std::string>("execute_script") && has_hassio_action(v);
  return c;
}

Command command_of(const nlohmann::json& v) {
  Command c;
  if (!v.is_object()) return c;
  if (auto it = v.find("type"); it != v.end() && it->is_string()) c.type = it->get<std::string>();
  if (auto it = v.find("domain"); it != v.end() && it->is_string()) {
    c.domain = it->get<std::string>();
  }
  c.hassio_action = c.type == std::optional<std::string>("execute_script") && has_hassio_action(v);
  return c;
}

// Core handles an array as a batch of commands, each on its own.
std::vector<Command> commands_of(const bj::value& v) {
  std::vector<Command> out;
  if (const bj::array* batch = v.if_array()) {
    for (const auto& element : *batch) out.push_back(command_of(element));
  } else {
    out.push_back(command_of(v));
  }
  return out;
}

std::vector<Command> commands_of(const nlohmann::json& v) {
  std::vector<Command> out;
  if (v.is_array()) {
    for (const auto& element : v) out.push_back(command_of(element));
  } else {
    out.push_back(command_of(v));
  }
  return out;
}

// Equal values, numbers compared as numbers: a rewritten batch is nlohmann's re-serialisation,
// and Boost.JSON 1.81 rounds long decimal mantissas less precisely than nlohmann (a 62-digit
// id read back differs in the last bit), so doubles may differ by a few units in the last place.
bool same_value(const bj::value& a, const bj::value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_double() || b.is_double()) {
      const double x = a.to_number<double>();
      const double y = b.to_number<double>();
      return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
    }
    return a == b;  // int64 and uint64 compare by value
  }
  if (a.kind() != b.kind()) return false;
  if (const bj::array* x = a.if_array()) {
    const bj::array& y = b.get_array();
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i) {
      if (!same_value((*x)[i], y[i])) return false;
    }
    return true;
  }
  if (const bj::object* x = a.if_object()) {
    const bj::object& y = b.get_object();
    if (x->size() != y.size()) return false;
    for (const auto& [key, value] : *x) {
      auto it = y.find(key);
      if (it == y.end() || !same_value(value, it->value())) return false;
    }
    return true;
  }
  return a == b;
}

bool refused_by_policy(const Command& c, bool allow_hassio_domain) {
  if (!c.type) return false;
  if (is_denied_ws_type(*c.type)) return true;
  if (allow_hassio_domain) return false;
  if (*c.type == "execute_script") return c.hassio_action;
  return *c.type == "call_service" && c.domain && is_hassio_domain(*c.domain);
}

void check_forwarded(std::string_view sent, bool allow_hassio_domain, bool whole_frame) {
  const auto core = parse_like_core(sent);
  if (!core) return;  // Core cannot read it either: it disconnects the client
  const auto core_commands = commands_of(*core);
  for (const auto& c : core_commands) {
    FUZZ_CHECK(!refused_by_policy(c, allow_hassio_domain),
               "a forwarded frame reads as a refused command to the second parser");
    if (whole_frame && !core->is_array()) {
      FUZZ_CHECK(c.type != std::optional<std::string>("auth"),
                 "a forwarded frame reads as an auth message to the second parser");
    }
  }
  const auto ours = nlohmann::json::parse(sent, nullptr, /*allow_exceptions=*/false);
  if (ours.is_discarded()) return;  // forwarded unparsed: the scan ruled it out, checked above
  FUZZ_CHECK(ours.is_array() == core->is_array(), "both parsers see a batch, or neither");
  FUZZ_CHECK(commands_of(ours) == core_commands, "both parsers read the same commands");
}

void check(std::string_view frame, bool allow_hassio_domain) {
  const ClientFrameVerdict verdict = inspect_client_text(frame, allow_hassio_domain);
  switch (verdict.action) {
    case Action::refuse:
    case Action::drop:
      FUZZ_CHECK(verdict.rewritten.empty(), "nothing to send upstream when refused");
      return;
    case Action::client_auth: {
      const auto core = parse_like_core(frame);
      if (core) {
        const Command c = command_of(*core);
        FUZZ_CHECK(core->is_object() && c.type == std::optional<std::string>("auth"),
                   "what the filter takes for auth is auth to the second parser");
      }
      return;
    }
    case Action::forward_original:
      FUZZ_CHECK(verdict.local_replies.empty(), "no local reply for a frame sent on whole");
      check_forwarded(frame, allow_hassio_domain, /*whole_frame=*/true);
      return;
    case Action::forward_rewritten: {
      FUZZ_CHECK(!verdict.local_replies.empty(), "a rewrite answers what it removed");
      const auto kept = parse_like_core(verdict.rewritten);
      FUZZ_CHECK(kept && kept->is_array(), "the rewritten batch reads as an array");
      check_forwarded(verdict.rewritten, allow_hassio_domain, /*whole_frame=*/false);
      // Exactly the elements the second parser finds allowed in the original, unchanged.
      const auto original = parse_like_core(frame);
      if (!original) return;
      FUZZ_CHECK(original->is_array(), "only a batch is rewritten");
      std::vector<bj::value> allowed;
      for (const auto& element : original->get_array()) {
        if (!refused_by_policy(command_of(element), allow_hassio_domain)) {
          allowed.push_back(element);
        }
      }
      const bj::array& kept_array = kept->get_array();
      FUZZ_CHECK(kept_array.size() == allowed.size(), "only refused elements are removed");
      FUZZ_CHECK(original->get_array().size() - allowed.size() == verdict.local_replies.size(),
                 "one local reply per removed element");
      for (std::size_t i = 0; i < allowed.size(); ++i) {
        FUZZ_CHECK(same_value(kept_array[i], allowed[i]), "kept elements are unchanged");
      }
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  check(frame, /*allow_hassio_domain=*/false);
  check(frame, /*allow_hassio_domain=*/true);
  return 0;
}
