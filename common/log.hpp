#pragma once
// Line-oriented logging in the 0.4.17 agent's format (docs/compatibility.md#logging):
//   [dinodia-hub-agent] INFO Listening { port: 8099 }
// Lines go to stdout, one write per line, safe from any thread. Secrets must never be passed
// here; callers log counts, paths and error classes, not tokens or bodies that could hold them.
#include <cstdint>
#include <string>
#include <string_view>

namespace dinodia::log {

enum class Level { trace = 10, debug = 20, info = 30, warn = 40, error = 50 };

// Parses "trace|debug|info|warn|error"; anything else is info (legacy behaviour).
Level parse_level(std::string_view name);
void set_level(Level level);
Level level();
bool enabled(Level level);

// Builds the `{ key: value, ... }` extra in the shape Node's util.inspect prints.
class Fields {
 public:
  Fields& add(std::string_view key, std::string_view value);  // quoted: 'value'
  Fields& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  Fields& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view(value));
  }
  Fields& add(std::string_view key, std::int64_t value);
  Fields& add(std::string_view key, int value) {
    return add(key, static_cast<std::int64_t>(value));
  }
  Fields& add(std::string_view key, std::size_t value) {
    return add(key, static_cast<std::int64_t>(value));
  }
  Fields& add(std::string_view key, double value);
  Fields& add(std::string_view key, bool value);
  Fields& add_null(std::string_view key);
  std::string str() const;

 private:
  void key(std::string_view k);
  std::string body_;
};

void write(Level level, std::string_view message, std::string_view extra = {});
inline void trace(std::string_view m, std::string_view e = {}) {
  write(Level::trace, m, e);
}
inline void debug(std::string_view m, std::string_view e = {}) {
  write(Level::debug, m, e);
}
inline void info(std::string_view m, std::string_view e = {}) {
  write(Level::info, m, e);
}
inline void warn(std::string_view m, std::string_view e = {}) {
  write(Level::warn, m, e);
}
inline void error(std::string_view m, std::string_view e = {}) {
  write(Level::error, m, e);
}
inline void trace(std::string_view m, const Fields& f) {
  write(Level::trace, m, f.str());
}
inline void debug(std::string_view m, const Fields& f) {
  write(Level::debug, m, f.str());
}
inline void info(std::string_view m, const Fields& f) {
  write(Level::info, m, f.str());
}
inline void warn(std::string_view m, const Fields& f) {
  write(Level::warn, m, f.str());
}
inline void error(std::string_view m, const Fields& f) {
  write(Level::error, m, f.str());
}

}  // namespace dinodia::log
