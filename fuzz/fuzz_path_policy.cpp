// Fuzzes the request-target normaliser and the path allow-list (docs/compatibility.md#paths) with
// the default allowed_path_regex patterns. The input is one raw request target as it would
// arrive on the request line (any bytes).
//
// Invariants on an accepted target: client_path starts with '/', holds no "//" and no "." or
// ".." segment (plain or percent-encoded), the query is empty or starts with '?', and the
// normaliser is idempotent: normalise(client_path + search) gives the same client_path and
// search. The allow-list decides the same for both and only allows paths under /api.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "ha_bridge/path_policy.hpp"

namespace {

using dinodia::ha_bridge::AllowList;
using dinodia::ha_bridge::normalise_target;

// The config.yaml default of allowed_path_regex (docs/compatibility.md#options).
const std::vector<std::string> kDefaultPatterns = {
    "^/api/?$",       "^/api/states($|/.*)",   "^/api/services/.*", "^/api/template$",
    "^/api/config.*", "^/api/camera_proxy/.*", "^/api/websocket$"};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool is_dot_segment(std::string_view s) {
  return s == "." || s == ".." || iequals(s, "%2e") || iequals(s, ".%2e") || iequals(s, "%2e.") ||
         iequals(s, "%2e%2e");
}

void check_path_shape(const std::string& path) {
  FUZZ_CHECK(!path.empty() && path.front() == '/', "client_path starts with '/'");
  FUZZ_CHECK(path.find("//") == std::string::npos, "client_path has no '//'");
  FUZZ_CHECK(path.find('\\') == std::string::npos, "client_path has no backslash");
  FUZZ_CHECK(path.find('?') == std::string::npos && path.find('#') == std::string::npos,
             "client_path has no query or fragment");
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    FUZZ_CHECK(!is_dot_segment(std::string_view(path).substr(start, end - start)),
               "client_path has no dot segment");
    start = end + 1;
  }
  for (unsigned char c : path) {
    FUZZ_CHECK(c > 0x20 && c < 0x7F, "client_path is printable ASCII (rest is %-encoded)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const AllowList allow_list(kDefaultPatterns);
  const std::string_view target(reinterpret_cast<const char*>(data), size);

  const auto first = normalise_target(target);
  // The shortcut for plain targets and the whole parser agree on every input.
  const auto full = dinodia::ha_bridge::normalise_target_fully(target);
  FUZZ_CHECK(first.has_value() == full.has_value(), "shortcut and parser agree on acceptance");
  if (first && full) {
    FUZZ_CHECK(first->pathname == full->pathname && first->client_path == full->client_path &&
                   first->search == full->search,
               "shortcut and parser normalise alike");
  }
  if (!first) return 0;
  check_path_shape(first->client_path);
  FUZZ_CHECK(first->search.empty() || first->search.front() == '?', "search starts with '?'");
  FUZZ_CHECK(first->search.find('#') == std::string::npos, "search has no fragment");

  const auto second = normalise_target(first->client_path + first->search);
  FUZZ_CHECK(second.has_value(), "a normalised target is accepted again");
  FUZZ_CHECK(second->client_path == first->client_path, "client_path is idempotent");
  FUZZ_CHECK(second->search == first->search, "search is idempotent");

  const bool allowed = allow_list.allows(first->client_path);
  FUZZ_CHECK(allowed == allow_list.allows(second->client_path), "same decision twice");
  if (allowed) {
    FUZZ_CHECK(first->client_path.starts_with("/api"), "only /api paths are allowed");
  }
  return 0;
}
