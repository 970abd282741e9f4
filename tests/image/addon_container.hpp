#pragma once
// The add-on image run the way the Supervisor runs it, through podman: /data from a folder with
// the options.json the test writes, the Supervisor's environment (SUPERVISOR_TOKEN), the image's
// own entry point as PID 1. Networking is the host's, so the container reaches the stand-ins on
// 127.0.0.1 and the test reaches the agent there too (every address stays on loopback).
// scripts/image.sh provides the image (DINODIA_IMAGE) and podman's configuration.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/fixtures.hpp"

namespace dinodia::testing {

// A command's exit code (-1 when it did not finish in time) and everything it printed.
struct CommandResult {
  int code = -1;
  std::string output;
};
CommandResult run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout = 120s);

// The image under test and its add-on architecture (amd64, aarch64, armv7), from scripts/image.sh.
std::string image_under_test();
std::string image_arch();
// Emulated architectures start and answer more slowly: how much longer to wait for them.
std::chrono::milliseconds scaled(std::chrono::milliseconds timeout);

class AddonContainer {
 public:
  // Starts the image detached with `data_dir` as /data and `env` in its environment.
  AddonContainer(const std::string& data_dir, const EnvMap& env);
  ~AddonContainer();  // removes the container (DINODIA_IMAGE_KEEP=1 keeps it)
  AddonContainer(const AddonContainer&) = delete;
  AddonContainer& operator=(const AddonContainer&) = delete;

  const std::string& name() const { return name_; }
  std::string logs() const;
  std::size_t count_log(const std::string& needle) const;
  bool wait_log(const std::string& needle, std::chrono::milliseconds timeout) const;
  bool wait_count(const std::string& needle, std::size_t n,
                  std::chrono::milliseconds timeout) const;
  // `podman exec` of a shell command inside the container.
  CommandResult exec(const std::string& shell_command) const;
  // The agent's PID inside the container as s6 reports it; 0 while it is down.
  int agent_pid() const;
  // "running", "exited", ... and the exit code once exited.
  std::string status() const;
  int exit_code() const;
  // Waits until the container has exited by itself; its exit code, nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) const;

 private:
  std::string inspect(const std::string& format) const;
  std::string name_;
};

}  // namespace dinodia::testing
