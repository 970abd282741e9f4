#include "common/code_pages.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

namespace dinodia::process {
namespace {

struct Mapping {
  std::string header;  // "begin-end perms": the mapping as both files name it
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  bool droppable = false;  // a read-only mapping of a file
  long rss_kib = 0;
  long anonymous_kib = -1;  // -1: not read (the mapping is left alone)
};

// A mapping's header line ("begin-end perms offset dev inode [path]") into `m`; false for any
// other line.
bool parse_header(const std::string& line, Mapping& m) {
  const auto space = line.find(' ');
  const auto dash = line.find('-');
  if (dash == std::string::npos || space == std::string::npos || dash > space ||
      line.find(':') < space) {
    return false;
  }
  std::istringstream header(line);
  std::string range, perms, offset, device, inode, path;
  header >> range >> perms >> offset >> device >> inode >> path;
  m.header = range + ' ' + perms;
  m.begin = std::stoull(range.substr(0, dash), nullptr, 16);
  m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
  m.droppable = perms.size() >= 4 && perms[1] == '-' && perms[3] == 'p' && !path.empty() &&
                path.front() == '/' && inode != "0";
  return true;
}

// smaps: a header line per mapping, then "Key: value kB" lines.
std::vector<Mapping> parse_smaps(std::istream& smaps) {
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(smaps, line)) {
    if (line.empty()) continue;
    Mapping m;
    if (parse_header(line, m)) {
      out.push_back(std::move(m));
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

std::vector<FileRange> droppable_file_ranges(std::istream& smaps, std::istream& maps) {
  std::unordered_set<std::string> listed;
  std::string line;
  while (std::getline(maps, line)) {
    Mapping m;
    if (parse_header(line, m)) listed.insert(m.header);
  }
  std::vector<FileRange> out;
  for (const Mapping& m : parse_smaps(smaps)) {
    if (!m.droppable || m.anonymous_kib != 0 || m.rss_kib == 0) continue;
    if (!listed.contains(m.header)) continue;
    out.push_back({m.begin, m.end, m.rss_kib});
  }
  return out;
}

std::size_t release_file_pages() {
  std::ifstream smaps("/proc/self/smaps");
  std::ifstream maps("/proc/self/maps");
  std::size_t released = 0;
  for (const FileRange& r : droppable_file_ranges(smaps, maps)) {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the address comes from the kernel's own list
    if (madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin, MADV_DONTNEED) == 0) {
      released += static_cast<std::size_t>(r.resident_kib);
    }
  }
  return released;
}

}  // namespace dinodia::process
