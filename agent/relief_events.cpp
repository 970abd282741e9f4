#include "agent/relief_events.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <string_view>

#include "common/log.hpp"
#include "ha_client/ha_connection.hpp"

namespace dinodia::agent {
namespace {

using nlohmann::json;

// How long stop() waits for the connection's loop to run the stop (it normally takes
// microseconds; a loop that is no longer running never will).
constexpr auto kStopWait = std::chrono::seconds(1);

// The events the relief depends on (docs/lan-bridge.md#kiosk-relief).
constexpr std::string_view kStateChanged = "state_changed";
constexpr std::string_view kConfigUpdated = "core_config_updated";
constexpr std::array<std::string_view, 7> kSubscribed = {
    kStateChanged,           "entity_registry_updated", "device_registry_updated",
    "area_registry_updated", "label_registry_updated",  "floor_registry_updated",
    kConfigUpdated,
};

// Which kinds of change a frame names. An event frame carries its event_type as a JSON string
// ("state_changed", with the quotes) whatever the key order or spacing, so a search for the
// names decides without parsing a frame that can be hundreds of KiB. A name inside an event's
// data only drops more than needed, never less.
struct Named {
  bool states = false;
  bool registry = false;
  bool config = false;
  bool any() const { return states || registry || config; }
};
Named names_in(std::string_view frame) {
  Named n;
  n.states = frame.find("\"state_changed\"") != std::string_view::npos;
  n.registry = frame.find("_registry_updated\"") != std::string_view::npos;
  n.config = frame.find("\"core_config_updated\"") != std::string_view::npos;
  return n;
}

class Stream final : public ReliefEvents, public std::enable_shared_from_this<Stream> {
 public:
  Stream(boost::asio::io_context& io, ha_client::HaClientConfig ha,
         ha_bridge::ReliefSignals& signals, std::function<void(std::string_view)> on_greeting)
      : io_(io), ha_(std::move(ha)), signals_(signals), on_greeting_(std::move(on_greeting)) {}

  void start() override {
    std::weak_ptr<Stream> weak = shared_from_this();
    ha_client::HaConnection::Handlers handlers;
    handlers.name = "kiosk relief";
    handlers.on_ready = [weak] {
      if (auto s = weak.lock()) s->subscribe();
    };
    handlers.on_event = [weak](const json& event) {
      if (auto s = weak.lock()) s->on_event(event);
    };
    handlers.on_frame = [weak](std::string_view frame) {
      auto s = weak.lock();
      return s && s->on_frame(frame);
    };
    handlers.on_lost = [weak] {
      if (auto s = weak.lock()) s->signals_.stream_down();
    };
    conn_ = ha_client::HaConnection::create(io_, ha_, std::move(handlers));
    conn_->start();
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    if (conn_) conn_->stop_and_wait(kStopWait);
    signals_.stream_down();
  }

 private:
  // On the connection's strand, after each auth_ok: the stream is up once every subscription
  // of this connection is confirmed.
  void subscribe() {
    const std::uint64_t session = conn_->ready_count();
    auto confirmed = std::make_shared<std::size_t>(0);
    // The callbacks wait in the connection this stream owns: holding the stream weakly, they
    // never keep it (and through it the connection) alive (docs/architecture.md#shutdown).
    std::weak_ptr<Stream> weak = shared_from_this();
    for (const auto type : kSubscribed) {
      conn_->request("subscribe_events", json{{"event_type", type}},
                     [weak, session, confirmed, type](const std::string& error, const json&) {
                       auto self = weak.lock();
                       if (!self || self->stopped_ || self->conn_->ready_count() != session ||
                           !self->conn_->ready()) {
                         return;
                       }
                       if (!error.empty()) {
                         log::warn(
                             "Kiosk relief: event subscription failed; answers are not "
                             "served from memory until Home Assistant reconnects",
                             log::Fields().add("event", type).add("error", error));
                         return;
                       }
                       if (++*confirmed == kSubscribed.size()) {
                         self->signals_.stream_up();
                         log::info("Kiosk relief: Home Assistant event stream up");
                       }
                     });
    }
  }

  // Decides from the names alone; a frame that also carries anything else (a result, the login)
  // is parsed as well.
  bool on_frame(std::string_view frame) {
    // Home Assistant's greeting, the first frame of every connection: ~50 bytes.
    if (on_greeting_ && frame.size() < 512 &&
        frame.find("\"auth_required\"") != std::string_view::npos) {
      on_greeting_(frame);
    }
    const Named n = names_in(frame);
    report(n);
    return n.any() && frame.find("\"result\"") == std::string_view::npos &&
           frame.find("\"auth") == std::string_view::npos;
  }

  // A parsed event (a frame on_frame did not take): by its type; one the relief does not know
  // drops everything.
  void on_event(const json& event) {
    const std::string type = event.value("event_type", "");
    Named n;
    n.states = type == kStateChanged;
    n.config = type == kConfigUpdated;
    n.registry = type.size() > 17 && type.ends_with("_registry_updated");
    if (!n.any()) n = Named{true, true, true};
    report(n);
  }

  void report(const Named& n) {
    if (n.states) signals_.state_changed();
    if (n.registry) signals_.registry_updated();
    if (n.config) signals_.config_updated();
  }

  boost::asio::io_context& io_;
  ha_client::HaClientConfig ha_;
  ha_bridge::ReliefSignals& signals_;
  std::function<void(std::string_view)> on_greeting_;
  std::shared_ptr<ha_client::HaConnection> conn_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::shared_ptr<ReliefEvents> make_relief_events(
    boost::asio::io_context& io, ha_client::HaClientConfig ha, ha_bridge::ReliefSignals& signals,
    std::function<void(std::string_view)> on_greeting) {
  return std::make_shared<Stream>(io, std::move(ha), signals, std::move(on_greeting));
}

}  // namespace dinodia::agent
