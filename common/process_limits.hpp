#pragma once
// Process-wide resources a LAN full of clients can exhaust: open files and freed heap memory
// (docs/hostile-clients.md).
#include <cstddef>
#include <optional>
#include <string>

namespace dinodia::process {

struct DescriptorLimit {
  std::size_t before = 0;
  std::size_t after = 0;
};
// Raises the soft RLIMIT_NOFILE to the hard limit (Home Assistant OS starts add-ons with soft
// 1024, hard 524288; a process that needs more must raise its own soft limit). Capped at 2^20:
// nothing here needs more, and some libraries walk every possible descriptor.
DescriptorLimit raise_descriptor_limit();
// The soft RLIMIT_NOFILE now.
std::size_t descriptor_limit();

// Sets the allocator up so that memory freed after a burst can go back to the system: a fixed
// mmap threshold (glibc raises it after each large free otherwise, which keeps later large
// buffers on the heap for good), and one heap shared by all threads instead of an arena per
// thread that each keep their free pages. Call once at start, before threads start.
void tune_allocator();
// Gives free heap pages back to the system (malloc_trim); a few milliseconds on a large heap.
void release_free_memory();

// glibc's per-thread cache (tcache) keeps up to seven freed blocks of each small size on every
// thread. After a burst of connections those blocks are the last ones freed, spread over the
// burst's pages, and no trim can return a page that holds one: they kept about 0.25 MiB per
// worker resident (docs/hostile-clients.md#memory-after-a-burst). The cache can only be switched
// off by the GLIBC_TUNABLES variable as the process starts. Given the value the process started
// with, this returns the value to restart with, or nullopt when no restart is wanted: the cache
// size is set already (by this restart or by whoever started the process), or `preloaded`
// (LD_PRELOAD: valgrind and heaptrack load their tools that way, and a restart would leave them
// behind).
std::optional<std::string> allocator_tunables(const std::optional<std::string>& current,
                                              bool preloaded);
// Replaces the process image with /proc/self/exe under GLIBC_TUNABLES=`tunables`, same arguments
// and otherwise the same environment, same PID. Returns only if that failed (the process then
// runs on with the cache, which costs memory, not correctness).
void restart_with_tunables(char** argv, const std::string& tunables);

}  // namespace dinodia::process
