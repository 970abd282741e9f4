#include "common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace dinodia::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_write_mutex;

std::string_view level_name(Level level) {
  switch (level) {
    case Level::trace:
      return "TRACE";
    case Level::debug:
      return "DEBUG";
    case Level::info:
      return "INFO";
    case Level::warn:
      return "WARN";
    case Level::error:
      return "ERROR";
  }
  return "INFO";
}
}  // namespace

Level parse_level(std::string_view name) {
  if (name == "trace") return Level::trace;
  if (name == "debug") return Level::debug;
  if (name == "warn") return Level::warn;
  if (name == "error") return Level::error;
  return Level::info;
}

void set_level(Level level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
Level level() {
  return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}
bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void write(Level lvl, std::string_view message, std::string_view extra) {
  if (!enabled(lvl)) return;
  std::string line;
  line.reserve(32 + message.size() + extra.size());
  line.append("[dinodia-hub-agent] ").append(level_name(lvl)).append(" ").append(message);
  if (!extra.empty()) line.append(" ").append(extra);
  // Control characters from upstream text must not forge extra log lines.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(g_write_mutex);
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDOUT_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

void Fields::key(std::string_view k) {
  body_.append(body_.empty() ? "{ " : ", ").append(k).append(": ");
}
Fields& Fields::add(std::string_view k, std::string_view value) {
  key(k);
  body_.push_back('\'');
  for (char c : value) {
    if (c == '\'' || c == '\\') body_.push_back('\\');
    body_.push_back(c);
  }
  body_.push_back('\'');
  return *this;
}
Fields& Fields::add(std::string_view k, std::int64_t value) {
  key(k);
  body_.append(std::to_string(value));
  return *this;
}
Fields& Fields::add(std::string_view k, double value) {
  key(k);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", value);
  body_.append(buf);
  return *this;
}
Fields& Fields::add(std::string_view k, bool value) {
  key(k);
  body_.append(value ? "true" : "false");
  return *this;
}
Fields& Fields::add_null(std::string_view k) {
  key(k);
  body_.append("null");
  return *this;
}
std::string Fields::str() const {
  return body_.empty() ? "{}" : body_ + " }";
}

}  // namespace dinodia::log
