#include "ha_bridge/bridge.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <future>
#include <optional>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/log.hpp"
#include "common/process_limits.hpp"
#include "ha_bridge/detail/context.hpp"
#include "ha_bridge/detail/http_session.hpp"
#include "ha_bridge/detail/reactor_reserve.hpp"

namespace dinodia::ha_bridge {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One worker per thread, each with its own single-threaded io_context and its own pool of
// upstream connections (the nginx worker model). A connection lives on one worker for its whole
// life, so the hot path takes no lock another thread contends for (the pool's own mutex is only
// ever taken by its worker while the bridge runs), wakes no other thread and never re-registers a
// socket with another event loop; a pooled upstream connection is reused on the loop it belongs
// to.
struct Worker {
  explicit Worker(const BridgeConfig& config)
      : ioc(1), pool(config.upstream_pool_size, std::chrono::seconds(20)) {
    waiting.bind(ioc);
  }
  // Its timer goes first; the list itself outlives the loop, whose destruction ends the
  // exchanges' coroutines (which take themselves off the list).
  ~Worker() { waiting.unbind(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Exchanges waiting for Home Assistant (declared before `ioc`, so destroyed after it).
  detail::WaitingExchanges waiting;
  asio::io_context ioc;
  // Idle keep-alive HTTP connections to the Supervisor (20 s idle maximum, well below aiohttp's
  // 75 s keep-alive, so we rarely pick one the server is closing).
  detail::UpstreamPool pool;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
};

struct LanBridge::Impl {
  Impl(BridgeConfig config, std::shared_ptr<const TokenRegistry> tokens,
       std::vector<LocalRoute> routes)
      : ctx(std::make_shared<detail::BridgeContext>(std::move(config), std::move(tokens),
                                                    std::move(routes))) {
    const int count = ctx->config.threads > 0 ? ctx->config.threads : 1;
    for (int i = 0; i < count; ++i) workers.push_back(std::make_unique<Worker>(ctx->config));
    acceptor.emplace(accept_ioc);
    maintenance.emplace(accept_ioc);
  }

  void accept() {
    // The accepted socket is created directly on the next worker's loop (round robin).
    Worker& next = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    acceptor->async_accept(
        next.ioc, [this, &next](boost::system::error_code ec, tcp::socket socket) {
          if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
          if (!ec) {
            admit(std::move(socket), next);
          } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                     ec == asio::error::no_memory || ec.value() == ENFILE) {
            // Out of descriptors or memory: back off briefly instead of spinning on accept, and
            // say so once a minute, not once per attempt.
            report_accept_failure(ec);
            auto timer = std::make_shared<asio::steady_timer>(acceptor->get_executor());
            timer->expires_after(std::chrono::milliseconds(100));
            timer->async_wait([this, timer](boost::system::error_code) {
              if (acceptor->is_open()) accept();
            });
            return;
          }
          accept();
        });
  }

  // The connection limits (docs/hostile-clients.md): one getpeername and one short lock per
  // connection, nothing per request.
  void admit(tcp::socket socket, Worker& worker) {
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    switch (ctx->connections.admit(peer.address())) {
      case detail::ConnectionTracker::Admission::refused_address:
      case detail::ConnectionTracker::Admission::refused_full:
        ctx->stats.connections_refused.fetch_add(1, std::memory_order_relaxed);
        return;  // the socket closes here
      case detail::ConnectionTracker::Admission::admitted_after_eviction:
        ctx->stats.connections_evicted.fetch_add(1, std::memory_order_relaxed);
        break;
      case detail::ConnectionTracker::Admission::admitted:
        break;
    }
    socket.set_option(tcp::no_delay(true), ec);
    // Started on the worker's own thread, so that the session's memory comes from that thread's
    // malloc arena, apart from the reactor state Asio allocated for the socket on this thread and
    // keeps for the next socket: interleaved with it, the pages of every closed connection stayed
    // resident (docs/hostile-clients.md).
    asio::post(worker.ioc, [this, &worker, socket = std::move(socket),
                            address = peer.address()]() mutable {
      detail::start_http_session(std::move(socket), address, ctx, worker.pool, worker.waiting);
    });
  }

  void report_accept_failure(boost::system::error_code ec) {
    ++accept_failures;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_accept_report) return;
    log::warn("Accept failed", log::Fields()
                                   .add("error", ec.message())
                                   .add("failures", static_cast<std::int64_t>(accept_failures)));
    accept_failures = 0;
    next_accept_report = now + std::chrono::minutes(1);
  }

  // Every few seconds on the acceptor's loop: the failed-token summaries, and memory back to
  // the system once a burst of connections has closed (glibc keeps freed heap pages otherwise;
  // docs/hostile-clients.md has the measurements).
  void schedule_maintenance() {
    maintenance->expires_after(std::chrono::seconds(2));
    maintenance->async_wait([this](boost::system::error_code ec) {
      if (ec || !acceptor->is_open()) return;
      ctx->auth_failures.tick();
      // Held answers older than the window are freed even when no request comes to look.
      if (ctx->relief) ctx->relief->sweep(std::chrono::steady_clock::now());
      const std::uint64_t closed = ctx->connections.closed();
      if (closed - closed_at_trim >= kTrimAfterClosed) {
        closed_at_trim = closed;
        process::release_free_memory();
      }
      schedule_maintenance();
    });
  }
  // Connections closed since the last trim that make a trim worth its few milliseconds.
  static constexpr std::uint64_t kTrimAfterClosed = 64;

  std::shared_ptr<detail::BridgeContext> ctx;
  std::vector<std::unique_ptr<Worker>> workers;
  std::size_t next_worker = 0;  // touched only on the acceptor's loop
  // The acceptor's own loop and thread: accepting, admission and the maintenance tick (whose
  // malloc_trim then never holds up a worker).
  asio::io_context accept_ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> accept_work;
  std::thread accept_thread;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> maintenance;  // on the acceptor's loop
  std::uint64_t closed_at_trim = 0;
  std::uint64_t accept_failures = 0;  // not reported yet
  std::chrono::steady_clock::time_point next_accept_report;
  std::uint16_t port = 0;
  std::size_t max_connections = 0;
  bool running = false;
};

LanBridge::LanBridge(BridgeConfig config, std::shared_ptr<const TokenRegistry> tokens,
                     std::vector<LocalRoute> local_routes)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(tokens), std::move(local_routes))) {
}

LanBridge::~LanBridge() {
  if (impl_ && impl_->running) stop(std::chrono::milliseconds(0));
}

void LanBridge::start() {
  auto& impl = *impl_;
  const auto& cfg = impl.ctx->config;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(cfg.bind_address, ec);
  if (ec) throw std::invalid_argument("bind address '" + cfg.bind_address + "' is not an IP");
  const tcp::endpoint endpoint(address, cfg.port);
  auto fail = [&](const char* what) {
    throw std::system_error(
        ec, std::string(what) + " " + cfg.bind_address + ":" + std::to_string(cfg.port));
  };
  impl.acceptor->open(endpoint.protocol(), ec);
  if (ec) fail("cannot open socket for");
  impl.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  impl.acceptor->bind(endpoint, ec);
  if (ec) fail("cannot bind");
  impl.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on");
  impl.port = impl.acceptor->local_endpoint().port();

  // Resolve the Supervisor once now for components that want an endpoint; the relay resolves
  // again by itself whenever a connect fails, so a failure here is not fatal.
  try {
    tcp::resolver resolver(impl.workers.front()->ioc);
    auto results = resolver.resolve(cfg.upstream.host, std::to_string(cfg.upstream.port));
    if (!results.empty()) impl.ctx->upstream_endpoint = results.begin()->endpoint();
  } catch (const std::exception&) {
  }

  // Leaves room below the descriptor limit for every client's upstream connection (a WebSocket
  // holds one for its whole life), the upstream pools and the agent's own files.
  const std::size_t descriptors = process::descriptor_limit();
  const std::size_t reserve = 64 + cfg.upstream_pool_size * impl.workers.size();
  const std::size_t fits =
      descriptors > 2 * reserve ? (descriptors - reserve) / 2 : descriptors / 4;
  impl.max_connections = std::min(cfg.max_connections, fits);
  impl.ctx->connections.set_limits({impl.max_connections, cfg.max_connections_per_address});
  // Connections go round robin to the workers; each also holds its upstream pool. A worker that
  // gets more than this in a burst makes the extra states then (docs/hostile-clients.md).
  const std::size_t states_per_worker =
      impl.max_connections / impl.workers.size() + cfg.upstream_pool_size + 32;
  for (auto& worker : impl.workers) detail::reserve_reactor_states(worker->ioc, states_per_worker);
  log::info("Connection limits", log::Fields()
                                     .add("connections", impl.max_connections)
                                     .add("per_address", cfg.max_connections_per_address)
                                     .add("descriptors", descriptors));

  asio::post(impl.acceptor->get_executor(), [&impl] {
    impl.accept();
    impl.schedule_maintenance();
  });
  for (auto& worker : impl.workers) {
    worker->work.emplace(worker->ioc.get_executor());
    worker->thread = std::thread([&ioc = worker->ioc] { ioc.run(); });
  }
  impl.accept_work.emplace(impl.accept_ioc.get_executor());
  impl.accept_thread = std::thread([&ioc = impl.accept_ioc] { ioc.run(); });
  impl.running = true;
}

std::uint16_t LanBridge::bound_port() const {
  return impl_->port;
}

void LanBridge::stop(std::chrono::milliseconds grace) {
  auto& impl = *impl_;
  if (!impl.running) return;
  impl.running = false;
  auto& connections = impl.ctx->connections;
  connections.set_stopping();

  std::promise<void> closed;
  asio::post(impl.acceptor->get_executor(), [&impl, &closed] {
    boost::system::error_code ignored;
    impl.acceptor->close(ignored);
    impl.maintenance->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  connections.notify_stopping();  // idle keep-alive connections close now

  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (connections.size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  connections.close_all();
  impl.ctx->stop_relief_upstream();
  const auto hard_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (connections.size() > 0 && std::chrono::steady_clock::now() < hard_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& worker : impl.workers) {
    worker->work.reset();
    worker->pool.clear();
    worker->ioc.stop();
  }
  for (auto& worker : impl.workers) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  impl.accept_work.reset();
  impl.accept_ioc.stop();
  if (impl.accept_thread.joinable()) impl.accept_thread.join();
}

BridgeStats LanBridge::stats() const {
  const auto& s = impl_->ctx->stats;
  BridgeStats out;
  out.http_requests = s.http_requests.load();
  out.http_rejected_unauthorized = s.http_rejected_unauthorized.load();
  out.http_rejected_forbidden = s.http_rejected_forbidden.load();
  out.http_upstream_errors = s.http_upstream_errors.load();
  out.ws_sessions = s.ws_sessions.load();
  out.ws_sessions_active = s.ws_sessions_active.load();
  out.connections_active = s.connections_active.load();
  out.connections_refused = s.connections_refused.load();
  out.connections_evicted = s.connections_evicted.load();
  out.max_connections = impl_->max_connections;
  out.relief_joined = s.relief_joined.load();
  out.relief_served_held = s.relief_served_held.load();
  out.relief_upstream = s.relief_upstream.load();
  out.relief_ws_sessions_without_login = s.relief_ws_sessions_without_login.load();
  if (impl_->ctx->relief) out.relief_held_bytes = impl_->ctx->relief->held_bytes();
  return out;
}

ReliefSignals& LanBridge::relief_signals() {
  return impl_->ctx->relief_signals;
}

void LanBridge::remember_ha_greeting(std::string_view auth_required_message) {
  if (auth_required_message.size() > detail::AuthRequiredCache::kMaxRemembered) return;
  const auto parsed =
      nlohmann::json::parse(auth_required_message, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("type", std::string()) != "auth_required") return;
  impl_->ctx->ws_auth_required.remember(auth_required_message);
}

asio::io_context& LanBridge::io_context() {
  return impl_->workers.front()->ioc;
}

}  // namespace dinodia::ha_bridge
