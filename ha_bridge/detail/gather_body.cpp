#include "ha_bridge/detail/gather_body.hpp"

namespace dinodia::ha_bridge::detail {

void gather_body(ClientConnection& client, std::string_view prefix,
                 const std::vector<std::string_view>& pieces, bool chunked, bool last) {
  auto& gather = client.gather;
  gather.clear();
  if (!prefix.empty()) gather.push_back(asio::buffer(prefix));
  if (!chunked) {
    for (auto piece : pieces) gather.push_back(asio::buffer(piece));
    return;
  }
  // Size lines live in one string, sized first so that the views into it stay put.
  auto& lines = client.chunk_lines;
  lines.clear();
  lines.reserve(pieces.size() * 18);
  for (auto piece : pieces) {
    char line[18];
    const auto size_line = chunk_size_line(piece.size(), line);
    const std::size_t at = lines.size();
    lines.append(size_line);
    gather.push_back(asio::buffer(lines.data() + at, size_line.size()));
    gather.push_back(asio::buffer(piece));
    gather.push_back(asio::buffer(std::string_view("\r\n")));
  }
  if (last) gather.push_back(asio::buffer(std::string_view("0\r\n\r\n")));
}

}  // namespace dinodia::ha_bridge::detail
