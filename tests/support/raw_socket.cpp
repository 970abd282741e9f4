#include "tests/support/raw_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace dinodia::testing {

RawSocket::RawSocket(int port, const std::string& host, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd_);
    throw std::runtime_error("bad address " + host);
  }
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("cannot bind to " + source);
    }
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to port " + std::to_string(port) + " failed");
  }
}

RawSocket::~RawSocket() {
  close();
}

void RawSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawSocket::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawSocket::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawSocket::read_some(std::string& out, std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(left.count()));
  if (r <= 0) return false;
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    peer_closed_ = true;  // EOF or reset: either way the server closed on us
    return false;
  }
  out.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::string RawSocket::read_until_close(std::chrono::milliseconds timeout) {
  std::string out = std::move(pending_);
  pending_.clear();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (read_some(out, deadline)) {
  }
  return out;
}

std::string RawSocket::read_until(std::string_view needle, std::chrono::milliseconds timeout) {
  std::string out = std::move(pending_);
  pending_.clear();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.find(needle) == std::string::npos && read_some(out, deadline)) {
  }
  return out;
}

std::string RawSocket::read_response(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  while (out.find("\r\n\r\n") == std::string::npos && read_some(out, deadline)) {
  }
  const auto header_end = out.find("\r\n\r\n");
  if (header_end == std::string::npos) return out;
  std::size_t length = 0;
  std::string lower;
  for (std::size_t i = 0; i < header_end; ++i)
    lower.push_back(static_cast<char>(std::tolower(out[i])));
  if (auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
    length = std::stoul(lower.substr(cl + 17));
  }
  const std::size_t total = header_end + 4 + length;
  while (out.size() < total && read_some(out, deadline)) {
  }
  if (out.size() > total) {
    pending_ = out.substr(total);
    out.resize(total);
  }
  return out;
}

}  // namespace dinodia::testing
