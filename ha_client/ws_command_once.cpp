#include "ha_client/ws_command_once.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "ha_bridge/ws_credentials.hpp"
#include "ha_client/detail/open_websocket.hpp"
#include "ha_client/detail/random_below.hpp"
#include "ha_client/detail/ws_messages.hpp"

namespace dinodia::ha_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using json = nlohmann::json;

namespace {

using detail::WsStream;

class OneShot : public std::enable_shared_from_this<OneShot> {
 public:
  OneShot(asio::io_context& io, HaClientConfig config, json command, JsonCallback cb)
      : strand_(asio::make_strand(io)),
        config_(std::move(config)),
        command_(std::move(command)),
        callback_(std::move(cb)),
        timer_(strand_) {}

  void run(std::chrono::milliseconds timeout) {
    asio::dispatch(strand_, [self = shared_from_this(), timeout] {
      if (self->config_.ws_tokens.empty()) return self->finish("ha_ws_auth_missing", json());
      self->timer_.expires_after(timeout);
      self->timer_.async_wait([self](beast::error_code ec) {
        if (!ec) self->finish("ha_ws_timeout", json());
      });
      detail::open_websocket(self->strand_, self->config_,
                             [self](const std::string& error, std::shared_ptr<WsStream> ws) {
                               if (self->done_) {
                                 if (ws) detail::close_websocket(*ws);
                                 return;
                               }
                               if (!error.empty()) return self->finish(error, json());
                               self->ws_ = std::move(ws);
                               self->read();
                             });
    });
  }

 private:
  void read() {
    // The read is bound to its connection: after auth_invalid the next credential gets a new
    // connection (and its own read), and this one must not go on reading a closed stream.
    auto ws = ws_;
    ws->async_read(buffer_, asio::bind_executor(strand_, [self = shared_from_this(), ws](
                                                             beast::error_code ec, std::size_t) {
                     if (self->done_ || ws != self->ws_) return;
                     if (ec) {
                       return self->finish(ec == websocket::error::closed ||
                                                   ec == asio::error::eof ||
                                                   ec == asio::error::connection_reset
                                               ? "ha_ws_closed"
                                               : ec.message(),
                                           json());
                     }
                     const std::string text = beast::buffers_to_string(self->buffer_.data());
                     self->buffer_.consume(self->buffer_.size());
                     detail::for_each_message(text, [&](const json& m) {
                       if (ws == self->ws_) self->on_message(m);
                     });
                     if (!self->done_ && ws == self->ws_) self->read();
                   }));
  }

  void on_message(const json& msg) {
    if (done_) return;
    const std::string type = msg.value("type", "");
    if (type == "auth_required") {
      write(ha_bridge::ws_auth_message(config_.ws_tokens[token_index_]));
    } else if (type == "auth_invalid") {
      // The connection is closed by HA after auth_invalid; legacy tries the next token on a
      // socket that is about to close, so a second token practically never gets a chance.
      // A new connection per token is what actually works.
      const auto next =
          ha_bridge::untried_credential_after_rejection(token_index_, config_.ws_tokens.size());
      if (!next) return finish("ha_ws_auth_invalid", json());
      token_index_ = *next;
      reconnect_with_next_token();
    } else if (type == "auth_ok") {
      json cmd = command_;
      cmd["id"] = id_;
      write(cmd.dump());
    } else if (type == "result" && msg.contains("id") && msg["id"] == id_) {
      if (msg.value("success", false))
        return finish("", msg.contains("result") ? msg["result"] : json());
      const std::string e = detail::result_error_message(msg);
      finish(e.empty() ? "ha_ws_result_error" : "ha_ws_result_error:" + e, json());
    }
  }

  void reconnect_with_next_token() {
    close();
    detail::open_websocket(
        strand_, config_,
        [self = shared_from_this()](const std::string& error, std::shared_ptr<WsStream> ws) {
          if (self->done_) return;
          if (!error.empty()) return self->finish(error, json());
          self->ws_ = std::move(ws);
          self->buffer_.clear();
          self->read();
        });
  }

  void write(std::string text) {
    auto data = std::make_shared<std::string>(std::move(text));
    auto ws = ws_;
    ws->text(true);
    // At most two writes per connection, never concurrent: auth, then the command after
    // auth_ok (which HA only sends once it has read the auth message).
    ws->async_write(asio::buffer(*data),
                    asio::bind_executor(strand_, [self = shared_from_this(), data, ws](
                                                     beast::error_code ec, std::size_t) {
                      if (ec && !self->done_ && ws == self->ws_) self->finish(ec.message(), json());
                    }));
  }

  void close() {
    if (!ws_) return;
    detail::close_websocket(*ws_);
    ws_.reset();
  }

  void finish(std::string error, json value) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    close();
    auto cb = std::move(callback_);
    cb(std::move(error), std::move(value));
  }

  detail::Strand strand_;
  HaClientConfig config_;
  json command_;
  JsonCallback callback_;
  asio::steady_timer timer_;
  std::shared_ptr<WsStream> ws_;
  beast::flat_buffer buffer_;
  std::size_t token_index_ = 0;
  std::int64_t id_ = 1 + detail::random_below(1'000'000);
  bool done_ = false;
};

}  // namespace

void ws_command_once(asio::io_context& io, const HaClientConfig& config, std::string type,
                     json payload, std::chrono::milliseconds timeout, JsonCallback callback) {
  json command = payload.is_object() ? std::move(payload) : json::object();
  command["type"] = std::move(type);
  auto shot = std::make_shared<OneShot>(io, config, std::move(command), std::move(callback));
  shot->run(timeout);
}

}  // namespace dinodia::ha_client
