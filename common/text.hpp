#pragma once
// Small string helpers with the exact semantics the legacy agent relies on (JavaScript's
// String.prototype.trim and toLowerCase on ASCII).
#include <string>
#include <string_view>

namespace dinodia::text {

// Trims ASCII whitespace (space, \t, \n, \v, \f, \r). JS trim also strips Unicode spaces; hub
// tokens and serials are ASCII, so the difference cannot matter here.
std::string_view trim(std::string_view s);
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
// The value of one hexadecimal digit (either case), or -1.
int hex_digit_value(char c);
// Extracts the token from an `Authorization` value: "Bearer" (any case) + whitespace + rest,
// rest trimmed. Returns empty when the value is not a bearer credential.
std::string_view bearer_token(std::string_view authorization);

}  // namespace dinodia::text

namespace dinodia::text {

// True if the JSON text never nests objects/arrays deeper than `max_depth` (strings and their
// escapes are skipped). Checked BEFORE parsing untrusted JSON: nlohmann's parser is iterative,
// but copying, comparing and dumping a parsed value recurse once per level, so a deep enough
// document from the LAN or the platform would overflow the stack.
bool json_nesting_within(std::string_view json_text, int max_depth);

}  // namespace dinodia::text
