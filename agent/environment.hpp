#pragma once
// The process environment the agent honours. These names are a convention that tools outside
// the repo (the add-on's container, tests, benchmarks) rely on; do not rename them.
#include <optional>
#include <string>

namespace dinodia::agent {

struct Environment {
  std::string options_path = "/data/options.json";   // DINODIA_OPTIONS_PATH
  std::string data_dir = "/data";                    // DINODIA_DATA_DIR
  std::string supervisor_url = "http://supervisor";  // DINODIA_SUPERVISOR_URL
  std::string supervisor_token;                      // SUPERVISOR_TOKEN (HASSIO_TOKEN fallback)
  std::optional<int> sync_interval_seconds;          // DINODIA_SYNC_INTERVAL_SECONDS (tests only)
  std::optional<std::string> bind_address;           // DINODIA_BIND_ADDRESS (tests, benchmarks)
};

// Reads the variables above. Throws std::invalid_argument naming the variable on a bad value.
Environment read_environment();

}  // namespace dinodia::agent
