#pragma once
// A reader for the small YAML subset the add-on files use (addon/config.yaml,
// addon/translations/en.yaml), so tests can check them without a YAML library.
//
// Understood: block mappings and block sequences by indentation (spaces only), plain / 'single' /
// "double" quoted scalars, `[]` as an empty list, full-line and trailing `#` comments.
// Plain scalars become JSON the way PyYAML (the Supervisor's loader) would read them: true/false
// are booleans, decimal integers are numbers, anything else is a string.
//
// Everything else throws YamlSubsetError with the line number: tabs, flow mappings and non-empty
// flow sequences, anchors/aliases/tags, block scalars (| >), documents markers, duplicate keys,
// mappings inside sequences, and plain scalars PyYAML would read as something other than a string
// (null, ~, yes/no/on/off, floats, 0-prefixed numbers). Failing loudly matters: a reader that
// guessed would let a test pass on a file the Supervisor reads differently.
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dinodia::testing {

class YamlSubsetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses YAML text into JSON (mappings keep their key order).
nlohmann::ordered_json parse_yaml_subset(std::string_view text);
// Reads and parses a file; the error message names the file.
nlohmann::ordered_json load_yaml_subset(const std::string& path);

}  // namespace dinodia::testing
