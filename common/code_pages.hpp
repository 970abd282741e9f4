#pragma once
// The code the agent ran once to start (options, the doctor, pairing, the trackers' seeding,
// TLS and SQLite set-up) stays mapped for the life of the process and counts in its resident
// memory, though nothing runs it again. Once the agent has settled, it gives those pages back
// (docs/architecture.md#memory).
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <vector>

namespace dinodia::process {

// Unmaps the resident pages of every read-only mapping of a file (the agent's code and read-only
// data, the C library's) from this process with madvise(MADV_DONTNEED). The pages stay in the
// page cache, where the kernel may reclaim them; the next use of one maps it again (a minor
// fault, or a read from the image if it was reclaimed), so what the agent keeps running comes
// back by itself and what it ran once does not. A mapping that holds any private page (a
// relocated table, a debugger's breakpoint) is left alone: dropping it would lose the change.
// Returns the resident KiB the process no longer maps; 0 where /proc is missing.
std::size_t release_file_pages();

// What release_file_pages() drops, from the texts of /proc/self/smaps and /proc/self/maps: the
// read-only private file mappings smaps shows resident and without an anonymous page, and only
// those that maps lists too (same range and permissions). The two files list the same mappings on
// a real kernel; under qemu-user before 8.1 only maps is the emulated process's own and smaps is
// the emulator's (docs/building.md, "ARM test suites"): only ranges both files name are touched.
struct FileRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  long resident_kib = 0;
};
std::vector<FileRange> droppable_file_ranges(std::istream& smaps, std::istream& maps);

}  // namespace dinodia::process
