#include "ha_client/ws_commands_once.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

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
  OneShot(asio::io_context& io, HaClientConfig config, std::vector<json> commands,
          WsResultsCallback cb)
      : strand_(asio::make_strand(io)),
        config_(std::move(config)),
        commands_(std::move(commands)),
        results_(commands_.size()),
        answered_(commands_.size(), false),
        callback_(std::move(cb)),
        timer_(strand_) {}

  void run(std::chrono::milliseconds timeout) {
    asio::dispatch(strand_, [self = shared_from_this(), timeout] {
      if (self->commands_.empty()) return self->finish("");
      if (self->config_.ws_tokens.empty()) return self->finish("ha_ws_auth_missing");
      self->timer_.expires_after(timeout);
      self->timer_.async_wait([self](beast::error_code ec) {
        if (!ec) self->finish("ha_ws_timeout");
      });
      detail::open_websocket(self->strand_, self->config_,
                             [self](const std::string& error, std::shared_ptr<WsStream> ws) {
                               if (self->done_) {
                                 if (ws) detail::close_websocket(*ws);
                                 return;
                               }
                               if (!error.empty()) return self->finish(error);
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
                                               : ec.message());
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
      queue(ha_bridge::ws_auth_message(config_.ws_tokens[token_index_]));
    } else if (type == "auth_invalid") {
      // The connection is closed by HA after auth_invalid; legacy tries the next token on a
      // socket that is about to close, so a second token practically never gets a chance.
      // A new connection per token is what actually works.
      const auto next =
          ha_bridge::untried_credential_after_rejection(token_index_, config_.ws_tokens.size());
      if (!next) return finish("ha_ws_auth_invalid");
      token_index_ = *next;
      reconnect_with_next_token();
    } else if (type == "auth_ok") {
      for (std::size_t i = 0; i < commands_.size(); ++i) {
        json cmd = commands_[i];
        cmd["id"] = first_id_ + static_cast<std::int64_t>(i);
        queue(cmd.dump());
      }
    } else if (type == "result" && msg.contains("id") && msg["id"].is_number_integer()) {
      on_result(msg);
    }
  }

  void on_result(const json& msg) {
    const std::int64_t index = msg["id"].get<std::int64_t>() - first_id_;
    if (index < 0 || index >= static_cast<std::int64_t>(commands_.size())) return;
    const auto i = static_cast<std::size_t>(index);
    if (answered_[i]) return;
    answered_[i] = true;
    WsResult& r = results_[i];
    r.success = msg.value("success", false);
    if (r.success) {
      if (msg.contains("result")) r.result = msg["result"];
    } else {
      r.code = detail::result_error_code(msg);
      r.message = detail::result_error_message(msg);
    }
    if (++answered_count_ == commands_.size()) finish("");
  }

  void reconnect_with_next_token() {
    close();
    detail::open_websocket(
        strand_, config_,
        [self = shared_from_this()](const std::string& error, std::shared_ptr<WsStream> ws) {
          if (self->done_) return;
          if (!error.empty()) return self->finish(error);
          self->ws_ = std::move(ws);
          self->buffer_.clear();
          self->outgoing_.clear();
          self->writing_ = false;
          self->read();
        });
  }

  // Beast allows one write at a time: the auth message, then (after auth_ok, which Core only
  // sends once it has read the auth) the commands, each written when the one before is out.
  void queue(std::string text) {
    outgoing_.push_back(std::move(text));
    if (!writing_) write_next();
  }

  void write_next() {
    if (outgoing_.empty() || done_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto data = std::make_shared<std::string>(std::move(outgoing_.front()));
    outgoing_.pop_front();
    auto ws = ws_;
    ws->text(true);
    ws->async_write(asio::buffer(*data),
                    asio::bind_executor(strand_, [self = shared_from_this(), data, ws](
                                                     beast::error_code ec, std::size_t) {
                      if (self->done_ || ws != self->ws_) return;
                      if (ec) return self->finish(ec.message());
                      self->write_next();
                    }));
  }

  void close() {
    if (!ws_) return;
    detail::close_websocket(*ws_);
    ws_.reset();
  }

  void finish(std::string error) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    close();
    auto cb = std::move(callback_);
    if (!error.empty()) results_.clear();
    cb(std::move(error), std::move(results_));
  }

  detail::Strand strand_;
  HaClientConfig config_;
  std::vector<json> commands_;
  std::vector<WsResult> results_;
  std::vector<bool> answered_;
  std::size_t answered_count_ = 0;
  WsResultsCallback callback_;
  asio::steady_timer timer_;
  std::shared_ptr<WsStream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outgoing_;
  bool writing_ = false;
  std::size_t token_index_ = 0;
  std::int64_t first_id_ = 1 + detail::random_below(1'000'000);
  bool done_ = false;
};

}  // namespace

void ws_commands_once(asio::io_context& io, const HaClientConfig& config,
                      std::vector<json> commands, std::chrono::milliseconds timeout,
                      WsResultsCallback callback) {
  for (auto& command : commands) {
    if (!command.is_object()) command = json::object();
  }
  auto shot = std::make_shared<OneShot>(io, config, std::move(commands), std::move(callback));
  shot->run(timeout);
}

}  // namespace dinodia::ha_client
