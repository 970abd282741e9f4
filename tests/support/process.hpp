#pragma once
// Starting the real binaries (agent, fakes) from tests: real processes, real sockets.
// Output (stdout+stderr) goes to a log file that tests can wait on and scan, e.g. to read the
// port a process bound ("Listening { port: 41234 }") or to check no secret was ever logged.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dinodia::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

class Process {
 public:
  // Starts `argv[0]` with the given environment added to (and overriding) the test's own.
  // Variables mapped to an empty string are removed from the child's environment.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          std::string log_path);
  ~Process();  // SIGKILLs the child if it is still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Both waits stretch `timeout` under emulation (time_scale.hpp).
  // Waits for exit; returns the exit code (128+signal if killed), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }
  std::string log() const;
  // Waits until a log line contains `needle`; returns that line, nullopt on timeout or exit.
  std::optional<std::string> wait_for_log(const std::string& needle,
                                          std::chrono::milliseconds timeout = 10s);
  // Counts log lines containing `needle`.
  std::size_t count_log(const std::string& needle) const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Parses the first integer after "port: " (agent), "LISTENING " or "LISTENING2 " (a fake's first
// and second listener) in a log line.
int port_from_line(const std::string& line);

// The binaries under test (absolute paths baked in by CMake).
std::string agent_binary();
std::string fake_ha_binary();
std::string fake_platform_binary();
std::string source_dir();

}  // namespace dinodia::testing
