// fake_platform: the Dinodia platform's hub-agent API over real HTTP(S) for integration tests.
//   fake_platform --port 0 [--port2 0] [--backend vercel] [--backend2 aws] [--clock-offset S]
//                 [--rotate-seconds R] [--grace-seconds G] [--tls-cert f --tls-key k]
// Prints "LISTENING <port>" (and "LISTENING2 <port2>"). Control endpoints live under /_fake/.
#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.hpp"
#include "tests/fakes/fake_platform.hpp"

namespace fp = dinodia::fake_platform;
using json = nlohmann::json;

namespace {

struct FailureMode {
  // none | 500 | framework500 | 503 | hang | 401 | 404 | malformed | reset
  std::string mode = "none";
  int seconds = 0;      // hang duration
  int remaining = -1;   // requests left to affect; -1 = until changed
  std::string message;  // 401 text override
  std::string route;    // "pair" | "token-state" | "health": only that route; "" = every route
};

struct Listener {
  int index = 1;
  std::string backend;
  std::unique_ptr<httplib::Server> server;
  std::mutex mutex;
  FailureMode failure;
};

void send(httplib::Response& res, const fp::Response& r) {
  res.status = r.status;
  res.set_content(r.body, r.raw ? "text/plain" : "application/json");
}

std::optional<int> port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return std::nullopt;
}

// A connection reset by the platform (or a middlebox) before any response byte. httplib does
// not hand out the socket, so find it by its two ports; connect(AF_UNSPEC) disconnects an
// established TCP socket with an RST while the descriptor stays valid for httplib to close.
void reset_connection(const httplib::Request& req) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* entry = ::readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port) {
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      ::connect(fd, &unspec, sizeof unspec);
      break;
    }
  }
  ::closedir(dir);
}

// Applies the listener's injected failure, if any. Returns true when the request was answered.
bool inject_failure(Listener& l, const std::string& route, const httplib::Request& req,
                    httplib::Response& res) {
  FailureMode mode;
  {
    std::lock_guard lock(l.mutex);
    if (l.failure.mode == "none" || l.failure.remaining == 0) return false;
    if (!l.failure.route.empty() && l.failure.route != route) return false;
    if (l.failure.remaining > 0) --l.failure.remaining;
    mode = l.failure;
  }
  if (mode.mode == "hang") {
    // A slow platform: the request is still processed afterwards (a lost response).
    std::this_thread::sleep_for(std::chrono::seconds(mode.seconds));
    return false;
  }
  if (mode.mode == "500") {
    send(res, fp::envelope(500, "Injected failure"));
  } else if (mode.mode == "framework500") {
    // An unhandled exception in the route: the framework's 500, without the error envelope.
    send(res, fp::Response{500, "Internal Server Error", true});
  } else if (mode.mode == "503") {
    send(res, fp::envelope(503, "Service unavailable"));
  } else if (mode.mode == "401") {
    send(res, fp::envelope(401, mode.message.empty() ? "Invalid hub signature." : mode.message));
  } else if (mode.mode == "404") {
    send(res, fp::envelope(404, "Unknown hub serial."));
  } else if (mode.mode == "malformed") {
    res.status = 200;
    res.set_content("<html>definitely not json", "text/html");
  } else if (mode.mode == "reset") {
    reset_connection(req);
    res.status = 500;  // never reaches the client: the connection is gone
  } else {
    return false;
  }
  return true;
}

json body_json(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

void install_routes(Listener& l, fp::Platform& platform, std::vector<Listener*>& all) {
  httplib::Server& s = *l.server;
  s.set_post_routing_handler([&l, &platform](const httplib::Request&, httplib::Response& res) {
    res.set_header("Date", dinodia::clock::http_date(platform.now_ms() / 1000));
    if (!l.backend.empty()) res.set_header("x-dinodia-api-backend", l.backend);
  });
  s.Post("/api/hub-agent/pair", [&](const httplib::Request& req, httplib::Response& res) {
    platform.note_arrival("pair", l.index);
    if (inject_failure(l, "pair", req, res)) return;
    send(res, platform.pair(req.body, l.index));
  });
  s.Post("/api/hub-agent/token-state", [&](const httplib::Request& req, httplib::Response& res) {
    platform.note_arrival("token-state", l.index);
    if (inject_failure(l, "token-state", req, res)) return;
    send(res, platform.token_state(req.body, l.index));
  });
  if (l.backend == "aws") {
    s.Get("/api/health", [&](const httplib::Request& req, httplib::Response& res) {
      if (inject_failure(l, "health", req, res)) return;
      json out{{"ok", true}, {"service", "dinodia-platform-aws"}, {"ts", platform.now_ms()}};
      res.set_content(out.dump(), "application/json");
    });
  } else {
    // The Vercel origin has no such route: its framework's 404 page (with the Worker's headers).
    s.Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content("<!DOCTYPE html><title>404: This page could not be found.</title>",
                      "text/html");
    });
  }
  s.Post("/_fake/provision", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.provision(body_json(req)));
  });
  s.Get("/_fake/published-token", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.published_token(req.get_param_value("serial")));
  });
  s.Get("/_fake/state", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(platform.state(req.get_param_value("serial")).dump(), "application/json");
  });
  s.Post("/_fake/remove", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.remove_hub(body_json(req).value("serial", "")));
  });
  s.Post("/_fake/clear-sync-secret", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.clear_sync_secret(body_json(req).value("serial", "")));
  });
  s.Post("/_fake/set-sync-secret", [&](const httplib::Request& req, httplib::Response& res) {
    const json b = body_json(req);
    send(res, platform.set_sync_secret(b.value("serial", ""), b.value("syncSecret", "")));
  });
  s.Post("/_fake/heating-reset", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.request_heating_reset(body_json(req).value("serial", "")));
  });
  s.Post("/_fake/config", [&](const httplib::Request& req, httplib::Response& res) {
    send(res, platform.configure(body_json(req)));
  });
  // {"mode":"500|framework500|503|hang|401|404|malformed|reset|none","seconds":N,"count":N,
  //  "listener":1|2,"message":"...","route":"pair|token-state|health"}; without "listener" the
  //  mode applies to every listener, without "route" to every route.
  s.Post("/_fake/failure", [&all](const httplib::Request& req, httplib::Response& res) {
    json b = body_json(req);
    FailureMode mode;
    mode.mode = b.value("mode", "none");
    mode.seconds = b.value("seconds", 30);
    mode.remaining = b.value("count", -1);
    mode.message = b.value("message", "");
    mode.route = b.value("route", "");
    int which = b.value("listener", 0);
    for (Listener* target : all) {
      if (which != 0 && target->index != which) continue;
      std::lock_guard lock(target->mutex);
      target->failure = mode;
    }
    res.set_content(R"({"ok":true})", "application/json");
  });
}

std::unique_ptr<httplib::Server> make_server(const std::string& cert, const std::string& key) {
  if (!cert.empty()) return std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
  return std::make_unique<httplib::Server>();
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, port2 = -1;
  std::string backend, backend2, cert, key, bind = "127.0.0.1";
  fp::Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << arg << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--port")
      port = std::stoi(next());
    else if (arg == "--port2")
      port2 = std::stoi(next());
    else if (arg == "--backend")
      backend = next();
    else if (arg == "--backend2")
      backend2 = next();
    else if (arg == "--clock-offset")
      settings.clock_offset_s = std::stoll(next());
    else if (arg == "--rotate-seconds")
      settings.rotate_seconds = std::stoll(next());
    else if (arg == "--grace-seconds")
      settings.grace_seconds = std::stoll(next());
    else if (arg == "--tls-cert")
      cert = next();
    else if (arg == "--tls-key")
      key = next();
    else if (arg == "--bind")
      bind = next();
    else {
      std::cerr << "unknown argument " << arg << "\n";
      return 2;
    }
  }
  fp::Platform platform(settings);
  Listener first, second;
  first.index = 1;
  first.backend = backend;
  second.index = 2;
  second.backend = backend2;
  std::vector<Listener*> all{&first};
  if (port2 >= 0) all.push_back(&second);
  for (Listener* l : all) {
    l->server = make_server(cert, key);
    if (!l->server->is_valid()) {
      std::cerr << "server setup failed (TLS cert/key?)\n";
      return 1;
    }
    install_routes(*l, platform, all);
  }
  auto bind_listener = [&](Listener& l, int p) {
    if (p == 0) return l.server->bind_to_any_port(bind);
    return l.server->bind_to_port(bind, p) ? p : -1;
  };
  int bound1 = bind_listener(first, port);
  if (bound1 <= 0) {
    std::cerr << "bind failed\n";
    return 1;
  }
  int bound2 = -1;
  if (port2 >= 0) {
    bound2 = bind_listener(second, port2);
    if (bound2 <= 0) {
      std::cerr << "bind failed (port2)\n";
      return 1;
    }
  }
  std::thread t2;
  if (port2 >= 0) t2 = std::thread([&] { second.server->listen_after_bind(); });
  std::printf("LISTENING %d\n", bound1);
  if (port2 >= 0) std::printf("LISTENING2 %d\n", bound2);
  std::fflush(stdout);
  first.server->listen_after_bind();
  if (t2.joinable()) t2.join();
  return 0;
}
