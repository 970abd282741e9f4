#pragma once
// Internal to ha_bridge: framing body pieces for a gathered write (write_gathered.hpp), the
// client's body to Home Assistant and Home Assistant's answer to the client alike.
#include <string_view>
#include <vector>

#include "ha_bridge/detail/client_connection.hpp"

namespace dinodia::ha_bridge::detail {

// Fills `client.gather` with `prefix` (if any) and the body `pieces` the last put() found,
// framed for the wire: as they are, or as chunks (then `last` adds the final chunk). The chunk
// size lines live in `client.chunk_lines`.
void gather_body(ClientConnection& client, std::string_view prefix,
                 const std::vector<std::string_view>& pieces, bool chunked, bool last);

}  // namespace dinodia::ha_bridge::detail
