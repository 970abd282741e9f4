#pragma once
// Process-wide resources a LAN full of clients can exhaust: open files and freed heap memory
// (docs/hostile-clients.md).
#include <cstddef>

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
// buffers on the heap for good). Call once at start, before threads start.
void tune_allocator();
// Gives free heap pages back to the system (malloc_trim); a few milliseconds on a large heap.
void release_free_memory();

}  // namespace dinodia::process
