#include "ha_bridge/detail/reactor_reserve.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <vector>

namespace dinodia::ha_bridge::detail {

void reserve_reactor_states(boost::asio::io_context& io, std::size_t sockets) {
  using tcp = boost::asio::ip::tcp;
  std::vector<tcp::socket> open;
  open.reserve(sockets);
  for (std::size_t i = 0; i < sockets; ++i) {
    tcp::socket socket(io);
    boost::system::error_code ec;
    socket.open(tcp::v4(), ec);
    if (ec) break;
    open.push_back(std::move(socket));
  }
  // Leaving scope closes them all; their states stay with the reactor for reuse.
}

}  // namespace dinodia::ha_bridge::detail
