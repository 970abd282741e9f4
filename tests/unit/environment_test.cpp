// agent/environment: every variable is read once, and a bad number is an error naming the
// variable (the agent then exits with "Invalid environment"), never a silent 0.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "agent/environment.hpp"

using namespace dinodia::agent;

namespace {

// Sets one variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

std::string error_of_reading() {
  try {
    read_environment();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("DINODIA_TELEMETRY_POLL_SECONDS is read as whole seconds", "[environment]") {
  ::unsetenv("DINODIA_TELEMETRY_POLL_SECONDS");
  CHECK_FALSE(read_environment().telemetry_poll_seconds.has_value());
  {
    ScopedEnv poll("DINODIA_TELEMETRY_POLL_SECONDS", "3600");
    CHECK(read_environment().telemetry_poll_seconds == 3600);
  }
  {
    ScopedEnv poll("DINODIA_TELEMETRY_POLL_SECONDS", "");  // empty: as if unset
    CHECK_FALSE(read_environment().telemetry_poll_seconds.has_value());
  }
}

TEST_CASE("A bad DINODIA_TELEMETRY_POLL_SECONDS is an error naming it", "[environment]") {
  for (const char* bad : {"0", "-5", "abc", "12x", "86401"}) {
    ScopedEnv poll("DINODIA_TELEMETRY_POLL_SECONDS", bad);
    const std::string error = error_of_reading();
    INFO(bad);
    CHECK(error.find("DINODIA_TELEMETRY_POLL_SECONDS") != std::string::npos);
    CHECK(error.find(std::string("'") + bad + "'") != std::string::npos);
  }
}

TEST_CASE("A bad DINODIA_SYNC_INTERVAL_SECONDS is an error naming it", "[environment]") {
  ScopedEnv sync("DINODIA_SYNC_INTERVAL_SECONDS", "often");
  CHECK(error_of_reading().find("DINODIA_SYNC_INTERVAL_SECONDS") != std::string::npos);
}

TEST_CASE("The legacy file paths come from the environment when set", "[environment]") {
  ::unsetenv("DINODIA_TOKEN_STATE_PATH");
  ::unsetenv("DINODIA_HEATING_USAGE_STATE_PATH");
  ::unsetenv("DINODIA_ELECTRIC_USAGE_STATE_PATH");
  const Environment defaults = read_environment();
  CHECK_FALSE(defaults.token_state_path.has_value());
  CHECK_FALSE(defaults.heating_usage_state_path.has_value());
  CHECK_FALSE(defaults.electric_usage_state_path.has_value());
  ScopedEnv token("DINODIA_TOKEN_STATE_PATH", "/tmp/t.json");
  ScopedEnv heating("DINODIA_HEATING_USAGE_STATE_PATH", "/tmp/h.json");
  ScopedEnv electric("DINODIA_ELECTRIC_USAGE_STATE_PATH", "/tmp/e.json");
  const Environment env = read_environment();
  CHECK(env.token_state_path == "/tmp/t.json");
  CHECK(env.heating_usage_state_path == "/tmp/h.json");
  CHECK(env.electric_usage_state_path == "/tmp/e.json");
}
