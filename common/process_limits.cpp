#include "common/process_limits.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dinodia::process {
namespace {
constexpr rlim_t kMaxDescriptors = rlim_t{1} << 20;
}

DescriptorLimit raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  DescriptorLimit out{limit.rlim_cur, limit.rlim_cur};
  const rlim_t wanted = std::min(limit.rlim_max, kMaxDescriptors);
  if (limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = wanted;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) out.after = wanted;
  }
  return out;
}

std::size_t descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  return std::min(limit.rlim_cur, kMaxDescriptors);
}

void tune_allocator() {
#if defined(__GLIBC__)
  // Requests above 256 KiB (pre-authentication WebSocket messages, local routes' bodies) get
  // their own mapping, returned on free. Below it, the relay's buffers come from its per-thread
  // caches and are not churned.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // One heap for every thread. glibc gives each thread that allocates while another holds the
  // heap's lock an arena of its own, and an arena keeps its free pages: in a home (sync over
  // TLS, the trackers, the bridge) ten arenas held 4.2 MiB for 1.1 MB in use, one holds what is
  // in use (bench/README.md, "Home configuration memory"). The agent's threads allocate little
  // on the request path, so they rarely wait for each other's lock (measured there too).
  mallopt(M_ARENA_MAX, 1);
#endif
}

void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

std::optional<std::string> allocator_tunables(const std::optional<std::string>& current,
                                              bool preloaded) {
#if defined(__GLIBC__)
  constexpr std::string_view kSetting = "glibc.malloc.tcache_count";
  if (preloaded) return std::nullopt;
  if (!current || current->empty()) return std::string(kSetting) + "=0";
  if (current->find(kSetting) != std::string::npos) return std::nullopt;
  return *current + ":" + std::string(kSetting) + "=0";
#else
  (void)current;
  (void)preloaded;
  return std::nullopt;
#endif
}

void restart_with_tunables(char** argv, const std::string& tunables) {
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: exec failed (no /proc). The process runs on as started; the changed variable
  // would only reach child processes, and the agent starts none.
}

}  // namespace dinodia::process
