#pragma once
// The code the agent ran once to start (options, the doctor, pairing, the trackers' seeding,
// TLS and SQLite set-up) stays mapped for the life of the process and counts in its resident
// memory, though nothing runs it again. Once the agent has settled, it gives those pages back
// (docs/architecture.md#memory).
#include <cstddef>

namespace dinodia::process {

// Unmaps the resident pages of every read-only mapping of a file (the agent's code and read-only
// data, the C library's) from this process with madvise(MADV_DONTNEED). The pages stay in the
// page cache, where the kernel may reclaim them; the next use of one maps it again (a minor
// fault, or a read from the image if it was reclaimed), so what the agent keeps running comes
// back by itself and what it ran once does not. A mapping that holds any private page (a
// relocated table, a debugger's breakpoint) is left alone: dropping it would lose the change.
// Returns the resident KiB the process no longer maps; 0 where /proc is missing.
std::size_t release_file_pages();

}  // namespace dinodia::process
