#include "common/code_pages.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dinodia::process {
namespace {

struct Mapping {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  bool droppable = false;  // a read-only mapping of a file
  long rss_kib = 0;
  long anonymous_kib = -1;  // -1: not read (the mapping is left alone)
};

// /proc/self/smaps: a header line per mapping ("begin-end perms offset dev inode [path]"), then
// "Key: value kB" lines.
std::vector<Mapping> read_mappings() {
  std::vector<Mapping> out;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  while (std::getline(smaps, line)) {
    if (line.empty()) continue;
    const auto space = line.find(' ');
    const auto dash = line.find('-');
    if (dash != std::string::npos && space != std::string::npos && dash < space &&
        line.find(':') > space) {
      Mapping m;
      std::istringstream header(line);
      std::string range, perms, offset, device, inode, path;
      header >> range >> perms >> offset >> device >> inode >> path;
      m.begin = std::stoull(range.substr(0, dash), nullptr, 16);
      m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
      m.droppable = perms.size() >= 4 && perms[1] == '-' && perms[3] == 'p' && !path.empty() &&
                    path.front() == '/' && inode != "0";
      out.push_back(m);
      continue;
    }
    if (out.empty()) continue;
    std::istringstream field(line);
    std::string key;
    long value = 0;
    field >> key >> value;
    if (key == "Rss:") out.back().rss_kib = value;
    if (key == "Anonymous:") out.back().anonymous_kib = value;
  }
  return out;
}

}  // namespace

std::size_t release_file_pages() {
  std::size_t released = 0;
  for (const Mapping& m : read_mappings()) {
    if (!m.droppable || m.anonymous_kib != 0 || m.rss_kib == 0) continue;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the address comes from the kernel's own list
    if (madvise(reinterpret_cast<void*>(m.begin), m.end - m.begin, MADV_DONTNEED) == 0) {
      released += static_cast<std::size_t>(m.rss_kib);
    }
  }
  return released;
}

}  // namespace dinodia::process
