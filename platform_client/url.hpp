#pragma once
// The slice of WHATWG URL parsing the platform client needs: absolute http(s) URLs and the
// resolution of a reference against a base, as Node's `new URL(ref, base)` does for the inputs
// the add-on options can hold.
#include <optional>
#include <string>
#include <string_view>

namespace dinodia::platform_client {

struct Url {
  std::string scheme;  // "http" or "https" (lowercased)
  std::string host;    // lowercased; IPv6 literals keep their brackets
  int port = 0;        // explicit port, else the scheme default
  bool default_port = true;
  std::string path;   // starts with '/', dot segments removed
  std::string query;  // including '?', or empty

  std::string origin() const;  // scheme://host[:port]
  std::string href() const;    // origin + path + query (fragments are never sent)
  std::string target() const { return path + query; }  // request-target
};

// Parses an absolute http(s) URL; nullopt for anything else (other schemes, no host, bad port).
std::optional<Url> parse_url(std::string_view text);
// Resolves `reference` against `base` (absolute, network-path, absolute-path, query-only or
// relative-path references). nullopt if the result is not a valid http(s) URL.
std::optional<Url> resolve_url(const Url& base, std::string_view reference);

}  // namespace dinodia::platform_client
