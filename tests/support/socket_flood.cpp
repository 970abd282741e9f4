#include "tests/support/socket_flood.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace dinodia::testing {

int connect_from(int port, const std::string& source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
      ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

SocketFlood::~SocketFlood() {
  close_all();
}

std::size_t SocketFlood::open(std::size_t n, const std::string& source,
                              std::string_view first_bytes) {
  std::size_t opened = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = connect_from(port_, source);
    if (fd < 0) continue;
    if (!first_bytes.empty()) {
      (void)::send(fd, first_bytes.data(), first_bytes.size(), MSG_NOSIGNAL);
    }
    fds_.push_back(fd);
    closed_.push_back(false);
    ++opened;
  }
  return opened;
}

bool SocketFlood::closed_by_server(std::size_t i) {
  if (closed_[i]) return true;
  pollfd p{fds_[i], POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLERR | POLLHUP)) != 0) return closed_[i] = true;
  char scratch[4096];
  const ssize_t got = ::recv(fds_[i], scratch, sizeof scratch, MSG_DONTWAIT);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    closed_[i] = true;  // end of file, or a reset
  }
  return closed_[i];
}

std::size_t SocketFlood::count_closed() {
  std::size_t closed = 0;
  for (std::size_t i = 0; i < fds_.size(); ++i) closed += closed_by_server(i) ? 1 : 0;
  return closed;
}

bool SocketFlood::wait_closed(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (count_closed() < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void SocketFlood::close_all() {
  for (const int fd : fds_) ::close(fd);
  fds_.clear();
  closed_.clear();
}

}  // namespace dinodia::testing
