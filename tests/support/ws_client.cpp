#include "tests/support/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <optional>
#include <stdexcept>

namespace dinodia::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string WsEvent::describe() const {
  switch (kind) {
    case Kind::message:
      return std::string(binary ? "binary" : "text") + " message (" + std::to_string(data.size()) +
             " bytes): " + data.substr(0, 200);
    case Kind::closed:
      return "close " + std::to_string(close_code) + " '" + close_reason + "'";
    case Kind::timeout:
      return "timeout";
    case Kind::error:
      return "error: " + error;
  }
  return "?";
}

struct WsClient::Impl {
  asio::io_context ioc;  // first: destroyed last, after the stream that uses it
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  bool read_pending = false;
  std::optional<WsEvent> read_result;
  int receive_buffer = 0;
  std::vector<Clock::time_point> pings;

  // Runs handlers until `done` is true or the deadline passes.
  bool run_until(const bool& done, Clock::time_point deadline) {
    while (!done) {
      auto now = Clock::now();
      if (now >= deadline) return false;
      if (ioc.stopped()) ioc.restart();
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  void start_read() {
    if (read_pending || read_result) return;
    read_pending = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      read_pending = false;
      WsEvent event;
      if (!ec) {
        event.kind = WsEvent::Kind::message;
        event.binary = ws.got_binary();
        event.data = beast::buffers_to_string(buffer.data());
        buffer.consume(buffer.size());
      } else if (ec == websocket::error::closed) {
        event.kind = WsEvent::Kind::closed;
        event.close_code = ws.reason().code;
        event.close_reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
      } else {
        event.kind = WsEvent::Kind::error;
        event.error = ec.message();
      }
      read_result = std::move(event);
    });
  }

  void write(std::string_view data, bool binary, std::chrono::milliseconds timeout) {
    bool done = false;
    beast::error_code result;
    ws.binary(binary);
    ws.async_write(asio::buffer(data.data(), data.size()), [&](beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!run_until(done, Clock::now() + timeout)) {
      beast::get_lowest_layer(ws).close();
      run_until(done, Clock::now() + std::chrono::seconds(1));
      throw std::runtime_error("WebSocket write timed out");
    }
    if (result) throw std::runtime_error("WebSocket write failed: " + result.message());
  }
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {
  impl_->ws.control_callback([im = impl_.get()](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping) im->pings.push_back(Clock::now());
  });
}

std::vector<Clock::time_point> WsClient::pings_received() const {
  return impl_->pings;
}
WsClient::~WsClient() = default;

void WsClient::set_receive_buffer(int bytes) {
  impl_->receive_buffer = bytes;
}
void WsClient::set_read_limit(std::size_t bytes) {
  impl_->ws.read_message_max(bytes);
}

void WsClient::connect(std::uint16_t port, const std::string& target,
                       std::chrono::milliseconds timeout, const std::string& host) {
  auto& im = *impl_;
  const auto deadline = Clock::now() + timeout;
  tcp::endpoint endpoint(asio::ip::make_address(host), port);
  auto& socket = beast::get_lowest_layer(im.ws).socket();
  socket.open(endpoint.protocol());
  if (im.receive_buffer > 0) {
    socket.set_option(asio::socket_base::receive_buffer_size(im.receive_buffer));
  }
  bool done = false;
  beast::error_code result;
  beast::get_lowest_layer(im.ws).async_connect(endpoint, [&](beast::error_code ec) {
    result = ec;
    done = true;
  });
  if (!im.run_until(done, deadline)) {
    beast::get_lowest_layer(im.ws).close();
    im.run_until(done, Clock::now() + std::chrono::seconds(1));
    throw std::runtime_error("WebSocket connect timed out");
  }
  if (result) throw std::runtime_error("WebSocket connect failed: " + result.message());

  done = false;
  im.ws.async_handshake(host + ":" + std::to_string(port), target, [&](beast::error_code ec) {
    result = ec;
    done = true;
  });
  if (!im.run_until(done, deadline)) {
    beast::get_lowest_layer(im.ws).close();
    im.run_until(done, Clock::now() + std::chrono::seconds(1));
    throw std::runtime_error("WebSocket handshake timed out");
  }
  if (result) throw std::runtime_error("WebSocket handshake failed: " + result.message());
}

void WsClient::send_text(std::string_view text, std::chrono::milliseconds timeout) {
  impl_->write(text, false, timeout);
}
void WsClient::send_binary(std::string_view bytes, std::chrono::milliseconds timeout) {
  impl_->write(bytes, true, timeout);
}

WsEvent WsClient::read(std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  im.start_read();
  bool has_result = false;
  // run_until watches a bool; the read handler fills read_result, so poll it in small steps.
  const auto deadline = Clock::now() + timeout;
  while (!im.read_result) {
    auto now = Clock::now();
    if (now >= deadline) break;
    if (im.ioc.stopped()) im.ioc.restart();
    im.ioc.run_one_for(deadline - now);
  }
  has_result = im.read_result.has_value();
  if (!has_result) return WsEvent{};
  WsEvent event = std::move(*im.read_result);
  im.read_result.reset();
  return event;
}

nlohmann::json WsClient::read_json(std::chrono::milliseconds timeout) {
  WsEvent event = read(timeout);
  if (!event.is_message() || event.binary) {
    throw std::runtime_error("expected a JSON text message, got " + event.describe());
  }
  return nlohmann::json::parse(event.data);
}

nlohmann::json WsClient::read_result(int id, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw std::runtime_error("no message with id " + std::to_string(id));
    nlohmann::json message = read_json(left);
    if (message.is_object() && message.value("id", -1) == id) return message;
  }
}

void WsClient::close(int code, const std::string& reason, std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  const auto deadline = Clock::now() + timeout;
  bool done = false;
  websocket::close_reason cr(static_cast<websocket::close_code>(code), reason);
  im.ws.async_close(cr, [&](beast::error_code) { done = true; });
  if (!im.run_until(done, deadline)) {
    beast::get_lowest_layer(im.ws).close();
    im.run_until(done, Clock::now() + std::chrono::seconds(1));
    throw std::runtime_error("WebSocket close timed out");
  }
  // A read that was left pending completes now; let it, so nothing refers to a dead stream.
  while (im.read_pending && Clock::now() < deadline) {
    if (im.ioc.stopped()) im.ioc.restart();
    im.ioc.run_one_for(deadline - Clock::now());
  }
}

void WsClient::abort() {
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(impl_->ws).close();
}

}  // namespace dinodia::testing
