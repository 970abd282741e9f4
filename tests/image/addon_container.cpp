#include "tests/image/addon_container.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <thread>

#include <unistd.h>

#include "tests/support/process.hpp"

namespace dinodia::testing {

namespace {
// Process starts a path, not a name: find `name` on PATH as a shell would.
std::string on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}
}  // namespace

CommandResult run_command(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  argv[0] = on_path(argv[0]);
  Process process(argv, {}, dir.file("output"));
  CommandResult result;
  result.code = process.wait(timeout).value_or(-1);
  result.output = process.log();
  return result;
}

std::string image_under_test() {
  const char* image = std::getenv("DINODIA_IMAGE");
  REQUIRE(image != nullptr);  // run through scripts/image.sh test ARCH
  return image;
}

std::string image_arch() {
  const char* arch = std::getenv("DINODIA_IMAGE_ARCH");
  REQUIRE(arch != nullptr);
  return arch;
}

std::chrono::milliseconds scaled(std::chrono::milliseconds timeout) {
  return image_arch() == "amd64" ? timeout : timeout * 4;
}

namespace {
std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

AddonContainer::AddonContainer(const std::string& data_dir, const EnvMap& env) {
  std::random_device random;
  name_ = "dinodia-image-test-" + std::to_string(random());
  std::vector<std::string> argv{"podman",    "run",  "-d", "--name",           name_,
                                "--network", "host", "-v", data_dir + ":/data"};
  // 32-bit ARM under qemu-user on this 64-bit host: the host file system's 64-bit directory
  // offsets make readdir fail with EOVERFLOW (s6-svscan cannot read its scan directory); a
  // tmpfs has small offsets. A real armv7 hub's kernel hands 32-bit processes 32-bit offsets.
  if (image_arch() == "armv7") argv.insert(argv.end(), {"--tmpfs", "/run"});
  for (const auto& [key, value] : env) {
    argv.insert(argv.end(), {"-e", key + "=" + value});
  }
  argv.push_back(image_under_test());
  const CommandResult started = run_command(argv);
  INFO(started.output);
  REQUIRE(started.code == 0);
}

AddonContainer::~AddonContainer() {
  const char* keep = std::getenv("DINODIA_IMAGE_KEEP");
  if (keep != nullptr && std::string(keep) == "1") return;
  run_command({"podman", "rm", "-f", "-t", "0", name_});
}

std::string AddonContainer::logs() const {
  return run_command({"podman", "logs", name_}).output;
}

std::size_t AddonContainer::count_log(const std::string& needle) const {
  const std::string text = logs();
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

bool AddonContainer::wait_log(const std::string& needle, std::chrono::milliseconds timeout) const {
  return wait_count(needle, 1, timeout);
}

bool AddonContainer::wait_count(const std::string& needle, std::size_t n,
                                std::chrono::milliseconds timeout) const {
  return wait_until([&] { return count_log(needle) >= n; }, timeout, 200ms);
}

CommandResult AddonContainer::exec(const std::string& shell_command) const {
  return run_command({"podman", "exec", name_, "sh", "-c", shell_command});
}

int AddonContainer::agent_pid() const {
  const CommandResult r =
      exec("s6-svstat -o pid /run/dinodia-hub-agent/services/dinodia-hub-agent");
  if (r.code != 0) return 0;
  const int pid = std::atoi(r.output.c_str());
  return pid > 0 ? pid : 0;
}

std::string AddonContainer::inspect(const std::string& format) const {
  return trimmed(run_command({"podman", "inspect", "--format", format, name_}).output);
}

std::string AddonContainer::status() const {
  return inspect("{{.State.Status}}");
}

int AddonContainer::exit_code() const {
  return std::atoi(inspect("{{.State.ExitCode}}").c_str());
}

std::optional<int> AddonContainer::wait_exit(std::chrono::milliseconds timeout) const {
  if (!wait_until([&] { return status() == "exited"; }, timeout, 200ms)) return std::nullopt;
  return exit_code();
}

}  // namespace dinodia::testing
