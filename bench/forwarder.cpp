// The floor for one extra hop: a TCP forwarder that copies bytes between each client connection
// and a connection of its own to the upstream, and does nothing else (no HTTP parsing, no auth,
// no pool, no timeouts). No real proxy can cost less per request, so bench/run.sh measures it
// next to the agent and nginx: its ratio to direct access is the most any proxy can reach on the
// machine of the day. Not for anything but the benchmark.
//
// Usage: bench_forwarder <listen-port> <upstream-port> [threads]   (loopback only)
// Each thread has its own listening socket (SO_REUSEPORT) and its own epoll loop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

int g_listen_port = 0;
int g_upstream_port = 0;

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// The peer is a loopback socket that reads as fast as we write; a full send buffer is rare, so
// waiting for room with poll() keeps this simple.
bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent > 0) {
      data += sent;
      size -= static_cast<std::size_t>(sent);
    } else if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd wait{fd, POLLOUT, 0};
      ::poll(&wait, 1, 1000);
    } else {
      return false;
    }
  }
  return true;
}

std::uint64_t pair_key(int fd, int peer) {
  return static_cast<std::uint64_t>(static_cast<std::uint32_t>(fd)) << 32 |
         static_cast<std::uint32_t>(peer);
}

void serve() {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in address = loopback(g_listen_port);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 512) != 0) {
    std::perror("bench_forwarder: bind/listen");
    std::exit(1);
  }
  const int poller = ::epoll_create1(0);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = pair_key(listener, -1);
  ::epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  std::vector<char> buffer(64 * 1024);
  epoll_event ready[64];
  for (;;) {
    const int count = ::epoll_wait(poller, ready, 64, -1);
    std::vector<int> closed;  // in this batch: later events for them are stale
    for (int i = 0; i < count; ++i) {
      const int fd = static_cast<int>(ready[i].data.u64 >> 32);
      const int peer = static_cast<int>(ready[i].data.u64 & 0xffffffffU);
      if (std::find(closed.begin(), closed.end(), fd) != closed.end()) continue;
      if (fd == listener) {
        const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
        if (client < 0) continue;
        const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in target = loopback(g_upstream_port);
        if (::connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
          ::close(client);
          ::close(upstream);
          continue;
        }
        const int nodelay = 1;
        ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
        ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
        const int nonblocking = 1;
        ::ioctl(upstream, FIONBIO, &nonblocking);
        epoll_event from_client{};
        from_client.events = EPOLLIN;
        from_client.data.u64 = pair_key(client, upstream);
        ::epoll_ctl(poller, EPOLL_CTL_ADD, client, &from_client);
        epoll_event from_upstream{};
        from_upstream.events = EPOLLIN;
        from_upstream.data.u64 = pair_key(upstream, client);
        ::epoll_ctl(poller, EPOLL_CTL_ADD, upstream, &from_upstream);
        continue;
      }
      const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0 || !send_all(peer, buffer.data(), static_cast<std::size_t>(got))) {
        ::close(fd);  // closing removes both from the epoll set
        ::close(peer);
        closed.push_back(fd);
        closed.push_back(peer);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_forwarder <listen-port> <upstream-port> [threads]\n");
    return 2;
  }
  g_listen_port = std::atoi(argv[1]);
  g_upstream_port = std::atoi(argv[2]);
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(serve);
  std::printf("LISTENING %d\n", g_listen_port);
  std::fflush(stdout);
  for (auto& worker : workers) worker.join();
}
