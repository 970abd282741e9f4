// The platform's hub-agent routes (docs/platform-protocol.md), step by step, for the fake platform.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/text.hpp"
#include "tests/fakes/fake_platform.hpp"

namespace dinodia::fake_platform {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const char* error_code_for(int status) {
  switch (status) {
    case 400:
      return "INVALID_INPUT";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "CONFLICT";
    case 422:
      return "VALIDATION_FAILED";
    case 429:
      return "RATE_LIMITED";
    default:
      return "INTERNAL_ERROR";
  }
}

const char* status_name(TokenStatus s) {
  switch (s) {
    case TokenStatus::pending:
      return "PENDING";
    case TokenStatus::active:
      return "ACTIVE";
    case TokenStatus::grace:
      return "GRACE";
    case TokenStatus::revoked:
      return "REVOKED";
  }
  return "?";
}

Response ok_json(const ordered_json& body) {
  return Response{200, body.dump(), false};
}

// JavaScript truthiness for JSON values.
bool truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return true;
}

// `${ts}` as JavaScript renders a number.
std::string js_number_text(const json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  double d = v.get<double>();
  if (std::floor(d) == d && std::fabs(d) < 1e21) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, res.ptr);
}

// Number(x) for agentSeenVersion: numbers as-is, numeric strings coerced, else NaN.
double js_to_number(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_null()) return 0;
  if (v.is_string()) {
    std::string_view s = text::trim(v.get_ref<const std::string&>());
    if (s.empty()) return 0;
    double out = 0;
    auto res = std::from_chars(s.data(), s.data() + s.size(), out);
    if (res.ec == std::errc() && res.ptr == s.data() + s.size()) return out;
  }
  return std::nan("");
}

std::string new_hex(std::size_t bytes) {
  return crypto::to_hex(crypto::random_bytes(bytes));
}

// lanBaseUrl: http://<private IPv4>:8123 with an empty or "/" path, no query, no fragment.
std::optional<std::string> normalise_lan_base_url(const json& v) {
  if (!v.is_string()) return std::nullopt;
  std::string s(text::trim(v.get_ref<const std::string&>()));
  if (!text::istarts_with(s, "http://")) return std::nullopt;
  std::string rest = s.substr(7);
  if (rest.find_first_of("?#@") != std::string::npos) return std::nullopt;
  std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos && rest.substr(slash) != "/") return std::nullopt;
  std::size_t colon = authority.rfind(':');
  if (colon == std::string::npos || authority.substr(colon + 1) != "8123") return std::nullopt;
  std::string host = authority.substr(0, colon);
  int parts[4];
  int count = 0;
  std::size_t pos = 0;
  while (count < 4) {
    std::size_t dot = host.find('.', pos);
    std::string part = host.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (part.empty() || part.size() > 3 ||
        part.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    parts[count++] = std::stoi(part);
    if (parts[count - 1] > 255) return std::nullopt;
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (count != 4) return std::nullopt;
  bool is_private = parts[0] == 10 || (parts[0] == 172 && parts[1] >= 16 && parts[1] <= 31) ||
                    (parts[0] == 192 && parts[1] == 168);
  if (!is_private) return std::nullopt;
  return "http://" + std::to_string(parts[0]) + "." + std::to_string(parts[1]) + "." +
         std::to_string(parts[2]) + "." + std::to_string(parts[3]) + ":8123";
}

bool non_negative_number(const json& v, bool integer_only) {
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else if (v.is_string()) {
    d = js_to_number(v);
    if (text::trim(v.get_ref<const std::string&>()).empty()) return false;
  } else {
    return false;
  }
  if (!std::isfinite(d) || d < 0) return false;
  return !integer_only || std::floor(d) == d;
}

bool iso_date(const json& v) {
  return v.is_string() && clock::parse_iso8601_millis(v.get_ref<const std::string&>()).has_value();
}

// heatingUsage: returns {accepted, dropped:[{index, reason}]} or {ignored: reason}.
json validate_heating(const json& h) {
  json out = json::object();
  if (!h.is_object()) return json{{"ignored", "not an object"}};
  auto sv = h.find("schemaVersion");
  if (sv == h.end() || !sv->is_number() || (sv->get<double>() != 1 && sv->get<double>() != 2)) {
    return json{{"ignored", "schemaVersion"}};
  }
  int schema = static_cast<int>(sv->get<double>());
  auto devices = h.find("devices");
  if (devices == h.end() || !devices->is_array()) return json{{"ignored", "devices"}};
  json dropped = json::array();
  int accepted = 0;
  std::size_t limit = std::min<std::size_t>(devices->size(), 200);
  for (std::size_t i = 0; i < limit; ++i) {
    const json& row = (*devices)[i];
    std::string reason;
    if (!row.is_object()) {
      reason = "not an object";
    } else if (!row.contains("label") || !row["label"].is_string() ||
               (row["label"] != "Boiler" && row["label"] != "Radiator")) {
      reason = "label";
    } else if (!row.contains("entityId") || !row["entityId"].is_string() ||
               text::trim(row["entityId"].get_ref<const std::string&>()).empty()) {
      reason = "entityId";
    } else if (!row.contains("onSeconds") || !non_negative_number(row["onSeconds"], false)) {
      reason = "onSeconds";
    } else if (!row.contains("offSeconds") || !non_negative_number(row["offSeconds"], false)) {
      reason = "offSeconds";
    } else if (row.contains("unknownSeconds") &&
               !non_negative_number(row["unknownSeconds"], false)) {
      reason = "unknownSeconds";
    } else if (!row.contains("lastSeenAt") || !iso_date(row["lastSeenAt"])) {
      reason = "lastSeenAt";
    } else if (schema == 2 && row["label"] == "Boiler") {
      if (row.contains("efficiencyWeightedOnSeconds") &&
          !(row["efficiencyWeightedOnSeconds"].is_number() &&
            non_negative_number(row["efficiencyWeightedOnSeconds"], false))) {
        reason = "efficiencyWeightedOnSeconds";
      } else if (row.contains("efficiencyOnSeconds") &&
                 !(row["efficiencyOnSeconds"].is_number() &&
                   non_negative_number(row["efficiencyOnSeconds"], true))) {
        reason = "efficiencyOnSeconds";
      } else if (row.contains("efficiencyBand")) {
        const json& b = row["efficiencyBand"];
        std::string band = b.is_string() ? text::lower(text::trim(b.get_ref<const std::string&>()))
                                         : std::string();
        if (band.size() != 1 || band[0] < 'a' || band[0] > 'g') reason = "efficiencyBand";
      }
      if (reason.empty() && row.contains("efficiencyBandVersion") &&
          !(row["efficiencyBandVersion"].is_number() &&
            non_negative_number(row["efficiencyBandVersion"], true))) {
        reason = "efficiencyBandVersion";
      }
    }
    if (reason.empty()) {
      ++accepted;
    } else {
      dropped.push_back(json{{"index", i}, {"reason", reason}});
    }
  }
  out["schemaVersion"] = schema;
  out["accepted"] = accepted;
  out["dropped"] = dropped;
  out["beyondLimit"] = devices->size() > 200 ? devices->size() - 200 : 0;
  return out;
}

bool short_string(const json& v, std::size_t max, bool allow_empty = false) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() <= max && (allow_empty || !s.empty());
}

bool iso_or_null(const json& v) {
  return v.is_null() || iso_date(v);
}

// electricUsage (the newer platform's rules; the AWS/Vercel origin ignores the key).
json validate_electric(const json& e, std::int64_t now_ms) {
  if (!e.is_object()) return json{{"ignored", "not an object"}};
  if (!e.contains("schemaVersion") || e["schemaVersion"] != 1) {
    return json{{"ignored", "schemaVersion"}};
  }
  if (!e.contains("devices") || !e["devices"].is_array()) return json{{"ignored", "devices"}};
  const json& devices = e["devices"];
  json dropped = json::array();
  int accepted = 0;
  std::size_t limit = std::min<std::size_t>(devices.size(), 200);
  for (std::size_t i = 0; i < limit; ++i) {
    const json& r = devices[i];
    std::string reason;
    auto entity_ok = [&] {
      if (!r.contains("entityId") || !r["entityId"].is_string()) return false;
      std::string id = text::lower(r["entityId"].get_ref<const std::string&>());
      std::size_t dot = id.find('.');
      if (dot == std::string::npos) return false;
      std::string domain = id.substr(0, dot), rest = id.substr(dot + 1);
      if (domain != "light" && domain != "switch") return false;
      if (rest.empty() || rest.size() > 200) return false;
      return rest.find_first_of(" \t\r\n") == std::string::npos;
    };
    auto count_ok = [&](const char* k) {
      return r.contains(k) && r[k].is_number() && non_negative_number(r[k], true);
    };
    if (!r.is_object()) {
      reason = "not an object";
    } else if (!r.contains("label") || r["label"] != "Light") {
      reason = "label";
    } else if (!entity_ok()) {
      reason = "entityId";
    } else if (r.contains("entityName") && !short_string(r["entityName"], 200, true)) {
      reason = "entityName";
    } else if (!r.contains("trackingStartedAt") || !iso_or_null(r["trackingStartedAt"])) {
      reason = "trackingStartedAt";
    } else if (!r.contains("trackingEpoch") || !short_string(r["trackingEpoch"], 128)) {
      reason = "trackingEpoch";
    } else if (!r.contains("assignmentStartedAt") || !iso_or_null(r["assignmentStartedAt"])) {
      reason = "assignmentStartedAt";
    } else if (!r.contains("assignmentEpoch") || !short_string(r["assignmentEpoch"], 128)) {
      reason = "assignmentEpoch";
    } else if (r.contains("areaId") && !short_string(r["areaId"], 128, true)) {
      reason = "areaId";
    } else if (r.contains("areaName") && !short_string(r["areaName"], 200, true)) {
      reason = "areaName";
    } else if (!count_ok("onSeconds") || !count_ok("offSeconds") || !count_ok("unknownSeconds")) {
      reason = "seconds";
    } else if (!r.contains("lastSeenAt") || !iso_date(r["lastSeenAt"]) ||
               *clock::parse_iso8601_millis(r["lastSeenAt"].get_ref<const std::string&>()) >
                   now_ms + 5 * 60 * 1000) {
      reason = "lastSeenAt";
    } else {
      for (const char* k : {"lastWasOn", "lastWasKnown", "retired"}) {
        if (r.contains(k) && !r[k].is_boolean()) reason = k;
      }
    }
    if (reason.empty()) {
      ++accepted;
    } else {
      dropped.push_back(json{{"index", i}, {"reason", reason}});
    }
  }
  return json{{"accepted", accepted},
              {"dropped", dropped},
              {"beyondLimit", devices.size() > 200 ? devices.size() - 200 : 0}};
}

// haAreas: the normalised snapshot, or nullopt if nothing valid remains.
std::optional<json> normalise_ha_areas(const json& a) {
  if (!a.is_object() || !a.contains("areas") || !a["areas"].is_array()) return std::nullopt;
  if (!a.contains("capturedAt") || !iso_date(a["capturedAt"])) return std::nullopt;
  json areas = json::array();
  std::set<std::string> seen;
  const json& rows = a["areas"];
  for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 500); ++i) {
    const json& row = rows[i];
    if (!row.is_object() || !row.contains("name") || !row["name"].is_string()) continue;
    std::string name(text::trim(row["name"].get_ref<const std::string&>()));
    if (name.empty() || !seen.insert(text::lower(name)).second) continue;
    json out{{"name", name}};
    if (row.contains("areaId") && row["areaId"].is_string() &&
        !text::trim(row["areaId"].get_ref<const std::string&>()).empty()) {
      out["areaId"] = std::string(text::trim(row["areaId"].get_ref<const std::string&>()));
    }
    areas.push_back(out);
  }
  if (areas.empty()) return std::nullopt;
  return json{{"schemaVersion", 1}, {"capturedAt", a["capturedAt"]}, {"areas", areas}};
}

}  // namespace

Response envelope(int status, const std::string& message) {
  ordered_json body;
  body["ok"] = false;
  body["errorCode"] = error_code_for(status);
  body["error"] = message;
  return Response{status, body.dump(), false};
}

std::int64_t Platform::now_ms() const {
  const std::int64_t now = settings_.clock ? settings_.clock->unix_millis() : clock::unix_millis();
  return now + settings_.clock_offset_s * 1000;
}

void Platform::record_request(const std::string& route, const std::string& body, int listener) {
  if (!settings_.record_requests) return;
  ++request_counts_[route + "@" + std::to_string(listener)];
  ++request_counts_[route];
  last_body_by_route_[route] = body;
  json entry{{"route", route}, {"listener", listener}, {"atMs", now_ms()}};
  json parsed = json::parse(body, nullptr, false);
  entry["body"] = parsed.is_discarded() ? json(body) : parsed;
  recent_requests_.push_back(std::move(entry));
  if (recent_requests_.size() > 50) recent_requests_.erase(recent_requests_.begin());
}

std::optional<Response> Platform::parse_signed(const std::string& body, json& parsed, Signed& s) {
  parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || parsed.is_null()) return envelope(400, "Invalid body");
  auto field = [&](const char* key) -> json {
    if (!parsed.is_object() || !parsed.contains(key)) return json();
    return parsed[key];
  };
  json serial = field("serial"), ts = field("ts"), nonce = field("nonce"), sig = field("sig");
  if (!truthy(serial) || !ts.is_number() || !truthy(nonce) || !truthy(sig)) {
    return envelope(400, "serial, ts, nonce, sig are required.");
  }
  // serial.trim() on a non-string throws in the route: a framework 500 without the envelope.
  if (!serial.is_string()) return Response{500, "Internal Server Error", true};
  s.serial_raw = serial.get<std::string>();
  s.serial = std::string(text::trim(s.serial_raw));
  s.ts = ts.get<double>();
  s.ts_text = js_number_text(ts);
  s.nonce = nonce.is_string() ? nonce.get<std::string>() : nonce.dump();
  s.sig = sig.is_string() ? sig.get<std::string>() : sig.dump();
  if (all_nonce_set_.count(s.nonce) != 0) {
    ++duplicate_nonce_attempts_;
  } else {
    all_nonce_set_.insert(s.nonce);
    all_nonces_.push_back(s.nonce);
  }
  return std::nullopt;
}

std::optional<Response> Platform::verify(const Signed& s, const std::string& secret,
                                         std::int64_t now) {
  std::int64_t now_s = now / 1000;  // floor for non-negative epochs
  if (std::fabs(s.ts - static_cast<double>(now_s)) > static_cast<double>(settings_.max_skew_s)) {
    return envelope(401, "Invalid hub signature.");
  }
  std::string expected =
      crypto::hmac_sha256_hex(secret, s.serial_raw + "." + s.ts_text + "." + s.nonce);
  if (!crypto::constant_time_equal(expected, s.sig)) return envelope(401, "Invalid hub signature.");
  auto key = std::make_pair(s.serial_raw, s.nonce);
  if (nonce_table_.count(key) != 0) {
    ++replays_rejected_;
    return envelope(401, "Replay detected");
  }
  nonce_table_[key] = now;
  nonce_expiry_.emplace(now, key);
  // Retention: every row (any serial) older than the skew window goes.
  const std::int64_t cutoff = now - settings_.max_skew_s * 1000;
  while (!nonce_expiry_.empty() && nonce_expiry_.begin()->first < cutoff) {
    nonce_table_.erase(nonce_expiry_.begin()->second);
    nonce_expiry_.erase(nonce_expiry_.begin());
  }
  return std::nullopt;
}

void Platform::create_token(Hub& hub, std::int64_t version, std::int64_t now) {
  for (const auto& t : hub.tokens) {
    if (t.version == version) return;  // unique (hubInstallId, version) clash is swallowed
  }
  Token t;
  t.version = version;
  t.status = TokenStatus::pending;
  t.plaintext = new_hex(32);
  t.hash = crypto::sha256_hex(t.plaintext);
  t.created_at_ms = now;
  t.created_seq = ++seq_;
  hub.tokens.push_back(std::move(t));
}

void Platform::cleanup(Hub& hub) {
  // Cleanup: keep the newest row per status, delete the rest.
  auto newer = [](const Token& a, const Token& b, TokenStatus st) {
    if (st == TokenStatus::active) {
      auto pa = a.published_at_ms.value_or(-1), pb = b.published_at_ms.value_or(-1);
      if (pa != pb) return pa > pb;
    } else if (st == TokenStatus::grace) {
      auto ga = a.grace_until_ms.value_or(-1), gb = b.grace_until_ms.value_or(-1);
      if (ga != gb) return ga > gb;
    }
    if (a.version != b.version) return a.version > b.version;
    return a.created_seq > b.created_seq;
  };
  std::vector<Token> kept;
  for (TokenStatus st :
       {TokenStatus::pending, TokenStatus::active, TokenStatus::grace, TokenStatus::revoked}) {
    const Token* best = nullptr;
    for (const auto& t : hub.tokens) {
      if (t.status == st && (best == nullptr || newer(t, *best, st))) best = &t;
    }
    if (best != nullptr) kept.push_back(*best);
  }
  std::sort(kept.begin(), kept.end(),
            [](const Token& a, const Token& b) { return a.version < b.version; });
  hub.tokens = std::move(kept);
}

json Platform::accepted_hashes(const Hub& hub, std::int64_t now) const {
  std::vector<const Token*> rows;
  for (const auto& t : hub.tokens) {
    if (t.status == TokenStatus::revoked) continue;
    if (t.grace_until_ms && *t.grace_until_ms <= now) continue;
    rows.push_back(&t);
  }
  std::sort(rows.begin(), rows.end(),
            [](const Token* a, const Token* b) { return a->version < b->version; });
  json out = json::array();
  for (const auto* t : rows) out.push_back(t->hash);
  return out;
}

std::int64_t Platform::latest_version(const Hub& hub) const {
  std::int64_t v = 0;
  for (const auto& t : hub.tokens) v = std::max(v, t.version);
  return v;
}

Response Platform::pair(const std::string& body, int listener) {
  std::lock_guard lock(mutex_);
  record_request("pair", body, listener);
  json parsed;
  Signed s;
  if (auto err = parse_signed(body, parsed, s)) return *err;
  auto it = hubs_.find(s.serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  Hub& hub = it->second;
  std::int64_t now = now_ms();
  if (auto err = verify(s, hub.bootstrap_secret, now)) return *err;
  if (!hub.sync_secret) hub.sync_secret = new_hex(24);
  hub.last_seen_ms = now;
  if (hub.tokens.empty()) {
    create_token(hub, 1, now);
    cleanup(hub);
  }
  ordered_json out;
  out["ok"] = true;
  out["platformSyncEnabled"] = hub.platform_sync_enabled;
  out["platformSyncIntervalMinutes"] = hub.platform_sync_interval_minutes;
  out["syncSecret"] = *hub.sync_secret;
  out["publishedVersion"] = hub.published_version;
  out["latestVersion"] = latest_version(hub);
  out["hubTokenHashes"] = accepted_hashes(hub, now);
  return ok_json(out);
}

Response Platform::token_state(const std::string& body, int listener) {
  std::lock_guard lock(mutex_);
  record_request("token-state", body, listener);
  json parsed;
  Signed s;
  if (auto err = parse_signed(body, parsed, s)) return *err;
  auto it = hubs_.find(s.serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  Hub& hub = it->second;
  if (!hub.sync_secret) return envelope(401, "Hub not paired yet.");
  std::int64_t now = now_ms();
  if (auto err = verify(s, *hub.sync_secret, now)) return *err;

  double seen = parsed.contains("agentSeenVersion") ? js_to_number(parsed["agentSeenVersion"]) : 0;

  // 1. Snapshot, expire GRACE, cleanup.
  std::optional<std::int64_t> lowest_pending;
  for (const auto& t : hub.tokens) {
    if (t.status == TokenStatus::pending && (!lowest_pending || t.version < *lowest_pending)) {
      lowest_pending = t.version;
    }
  }
  for (auto& t : hub.tokens) {
    if (t.status == TokenStatus::grace && t.grace_until_ms && *t.grace_until_ms < now) {
      t.status = TokenStatus::revoked;
    }
  }
  cleanup(hub);
  // 2. Publication on acknowledgement.
  if (lowest_pending && seen >= static_cast<double>(*lowest_pending)) {
    Token* pending = nullptr;
    for (auto& t : hub.tokens) {
      if (t.version == *lowest_pending && t.status == TokenStatus::pending) pending = &t;
    }
    if (pending != nullptr) {
      for (auto& t : hub.tokens) {
        if (t.version == hub.published_version && t.status == TokenStatus::active) {
          t.status = TokenStatus::grace;
          t.grace_until_ms = now + settings_.grace_seconds * 1000;
        }
      }
      pending->status = TokenStatus::active;
      pending->published_at_ms = now;
      hub.published_version = pending->version;
      ++publications_;
      cleanup(hub);
    }
  }
  // 3. Seeding / rotation.
  bool has_pending = false;
  const Token* active = nullptr;
  for (const auto& t : hub.tokens) {
    if (t.status == TokenStatus::pending) has_pending = true;
    if (t.status == TokenStatus::active) active = &t;
  }
  if (!has_pending && active == nullptr) {
    create_token(hub, 1, now);
    cleanup(hub);
  } else if (!has_pending && active != nullptr && hub.platform_sync_enabled &&
             now - active->published_at_ms.value_or(now) >= settings_.rotate_seconds * 1000) {
    create_token(hub, latest_version(hub) + 1, now);
    cleanup(hub);
  }
  // 5. Acknowledgement bookkeeping: a non-integer version fails the DB update (framework 500).
  if (!std::isfinite(seen) || std::floor(seen) != seen) {
    return Response{500, "Internal Server Error", true};
  }
  hub.last_seen_ms = now;
  hub.last_acked_version = std::max(hub.last_acked_version, static_cast<std::int64_t>(seen));
  record_telemetry(hub, parsed, now);

  ordered_json out;
  out["ok"] = true;
  out["platformSyncEnabled"] = hub.platform_sync_enabled;
  out["platformSyncIntervalMinutes"] = hub.platform_sync_interval_minutes;
  out["publishedVersion"] = hub.published_version;
  out["latestVersion"] = latest_version(hub);
  out["hubTokenHashes"] = accepted_hashes(hub, now);
  if (hub.heating_reset_requested_ms &&
      (!hub.heating_reset_completed_ms ||
       *hub.heating_reset_completed_ms < *hub.heating_reset_requested_ms)) {
    out["heatingUsageResetAt"] = clock::iso8601_from_millis(*hub.heating_reset_requested_ms);
  } else {
    out["heatingUsageResetAt"] = nullptr;
  }
  if (hub.linked_home) {
    out["heatingUsageConfig"] = ordered_json{{"schemaVersion", 1},
                                             {"efficiencyBandsVersion", 1},
                                             {"defaultBoilerEfficiencyBand", "B"},
                                             {"boilerBandsByEntityId", ordered_json::object()}};
  } else {
    out["heatingUsageConfig"] = nullptr;
  }
  return ok_json(out);
}

void Platform::record_telemetry(Hub& hub, const json& body, std::int64_t now) {
  json& t = telemetry_[hub.serial];
  if (!t.is_object()) t = json::object();
  if (body.contains("lanBaseUrl")) {
    auto lan = normalise_lan_base_url(body["lanBaseUrl"]);
    t["lanBaseUrl"] = json{{"sent", body["lanBaseUrl"]},
                           {"accepted", lan.has_value()},
                           {"normalised", lan ? json(*lan) : json()}};
    if (lan) hub.last_reported_lan_base_url = *lan;
  }
  if (body.contains("haAreas")) {
    auto areas = normalise_ha_areas(body["haAreas"]);
    bool stored = false;
    if (areas) {
      auto captured = clock::parse_iso8601_millis((*areas)["capturedAt"].get<std::string>());
      if (!hub.last_reported_ha_areas_at_ms || *captured > *hub.last_reported_ha_areas_at_ms) {
        hub.last_reported_ha_areas = *areas;
        hub.last_reported_ha_areas_at_ms = *captured;
        stored = true;
      }
    }
    t["haAreas"] = json{{"valid", areas.has_value()}, {"stored", stored}};
  }
  // Heating reset acknowledgement, before heating ingestion.
  if (body.contains("heatingUsageResetAckAt") && body["heatingUsageResetAckAt"].is_string()) {
    auto ack = clock::parse_iso8601_millis(body["heatingUsageResetAckAt"].get<std::string>());
    bool applied = false;
    if (ack && hub.heating_reset_requested_ms && *ack >= *hub.heating_reset_requested_ms &&
        *ack > hub.heating_reset_completed_ms.value_or(0)) {
      hub.heating_reset_completed_ms = *ack;
      applied = true;
    }
    t["heatingUsageResetAck"] =
        json{{"sent", body["heatingUsageResetAckAt"]}, {"applied", applied}};
  }
  if (body.contains("heatingUsage")) t["heatingUsage"] = validate_heating(body["heatingUsage"]);
  if (body.contains("electricUsage")) {
    t["electricUsage"] = validate_electric(body["electricUsage"], now);
  }
}

Response Platform::provision(const json& request) {
  std::lock_guard lock(mutex_);
  if (!request.is_object() || !request.contains("serial") || !request["serial"].is_string()) {
    return envelope(400, "All fields are required.");
  }
  std::string serial(text::trim(request["serial"].get_ref<const std::string&>()));
  if (serial.empty()) return envelope(400, "All fields are required.");
  if (hubs_.count(serial) != 0) {
    return envelope(409,
                    "That serial is already provisioned. Run a full reset before "
                    "re-provisioning.");
  }
  Hub hub;
  hub.serial = serial;
  hub.bootstrap_secret =
      request.contains("bootstrapSecret") && request["bootstrapSecret"].is_string()
          ? request["bootstrapSecret"].get<std::string>()
          : new_hex(24);
  hub.linked_home = request.value("linkedHome", false);
  const std::int64_t now = now_ms();
  create_token(hub, 1, now);
  // "activeForSeconds": version 1 was published that long ago (a hub paired before; bench/fleet_sim
  // spreads its fleet's rotations this way).
  if (request.contains("activeForSeconds") && request["activeForSeconds"].is_number_integer()) {
    Token& v1 = hub.tokens.front();
    v1.status = TokenStatus::active;
    v1.published_at_ms = now - request["activeForSeconds"].get<std::int64_t>() * 1000;
    hub.published_version = 1;
  }
  hubs_[serial] = hub;
  ordered_json out{{"ok", true}, {"serial", serial}, {"bootstrapSecret", hub.bootstrap_secret}};
  return ok_json(out);
}

Response Platform::published_token(const std::string& serial) {
  std::lock_guard lock(mutex_);
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  for (const auto& t : it->second.tokens) {
    if (t.status == TokenStatus::active && t.version == it->second.published_version) {
      return ok_json(ordered_json{{"ok", true}, {"version", t.version}, {"token", t.plaintext}});
    }
  }
  return envelope(409, "No published hub token yet.");
}

std::vector<std::string> Platform::tokens_clients_may_hold(const std::string& serial) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) return out;
  const std::int64_t now = now_ms();
  for (const auto& t : it->second.tokens) {
    const bool published =
        t.status == TokenStatus::active && t.version == it->second.published_version;
    const bool in_grace =
        t.status == TokenStatus::grace && t.grace_until_ms && *t.grace_until_ms > now;
    if (published || in_grace) out.push_back(t.plaintext);
  }
  return out;
}

std::int64_t Platform::duplicate_nonce_attempts() {
  std::lock_guard lock(mutex_);
  return duplicate_nonce_attempts_;
}

std::int64_t Platform::replays_rejected() {
  std::lock_guard lock(mutex_);
  return replays_rejected_;
}

std::int64_t Platform::publications() {
  std::lock_guard lock(mutex_);
  return publications_;
}

std::size_t Platform::nonces_seen() {
  std::lock_guard lock(mutex_);
  return all_nonces_.size();
}

json Platform::state(const std::string& serial) {
  std::lock_guard lock(mutex_);
  json out;
  out["nowMs"] = now_ms();
  out["requestCounts"] = request_counts_;
  out["arrivals"] = arrivals_;
  out["recentRequests"] = recent_requests_;
  out["lastBodies"] = last_body_by_route_;
  out["nonces"] = all_nonces_;
  out["nonceCount"] = all_nonces_.size();
  out["duplicateNonceAttempts"] = duplicate_nonce_attempts_;
  out["replaysRejected"] = replays_rejected_;
  out["nonceTableSize"] = nonce_table_.size();
  out["settings"] = json{{"clockOffsetSeconds", settings_.clock_offset_s},
                         {"rotateSeconds", settings_.rotate_seconds},
                         {"graceSeconds", settings_.grace_seconds}};
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) {
    out["hub"] = nullptr;
    return out;
  }
  const Hub& hub = it->second;
  json tokens = json::array();
  for (const auto& t : hub.tokens) {
    json row{{"version", t.version}, {"status", status_name(t.status)}, {"hash", t.hash}};
    row["publishedAtMs"] = t.published_at_ms ? json(*t.published_at_ms) : json();
    row["graceUntilMs"] = t.grace_until_ms ? json(*t.grace_until_ms) : json();
    tokens.push_back(row);
  }
  out["hub"] = json{
      {"serial", hub.serial},
      {"paired", hub.sync_secret.has_value()},
      {"syncSecret", hub.sync_secret ? json(*hub.sync_secret) : json()},
      {"bootstrapSecret", hub.bootstrap_secret},
      {"platformSyncEnabled", hub.platform_sync_enabled},
      {"publishedVersion", hub.published_version},
      {"lastAckedVersion", hub.last_acked_version},
      {"latestVersion", latest_version(hub)},
      {"lastSeenAtMs", hub.last_seen_ms ? json(*hub.last_seen_ms) : json()},
      {"acceptedHashes", accepted_hashes(hub, now_ms())},
      {"tokens", tokens},
      {"lastReportedLanBaseUrl",
       hub.last_reported_lan_base_url ? json(*hub.last_reported_lan_base_url) : json()},
      {"lastReportedHaAreas", hub.last_reported_ha_areas ? *hub.last_reported_ha_areas : json()},
      {"telemetry", telemetry_.contains(serial) ? telemetry_[serial] : json()}};
  return out;
}

Response Platform::remove_hub(const std::string& serial) {
  std::lock_guard lock(mutex_);
  if (hubs_.erase(serial) == 0) return envelope(404, "Unknown hub serial.");
  return ok_json(ordered_json{{"ok", true}});
}

Response Platform::clear_sync_secret(const std::string& serial) {
  std::lock_guard lock(mutex_);
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  it->second.sync_secret.reset();
  return ok_json(ordered_json{{"ok", true}});
}

Response Platform::set_sync_secret(const std::string& serial, const std::string& sync_secret) {
  std::lock_guard lock(mutex_);
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  if (sync_secret.empty()) return envelope(400, "syncSecret is required.");
  it->second.sync_secret = sync_secret;
  return ok_json(ordered_json{{"ok", true}});
}

void Platform::note_arrival(const std::string& route, int listener) {
  std::lock_guard lock(mutex_);
  ++arrivals_[route + "@" + std::to_string(listener)];
  ++arrivals_[route];
}

Response Platform::request_heating_reset(const std::string& serial) {
  std::lock_guard lock(mutex_);
  auto it = hubs_.find(serial);
  if (it == hubs_.end()) return envelope(404, "Unknown hub serial.");
  it->second.heating_reset_requested_ms = now_ms();
  it->second.heating_reset_completed_ms.reset();
  return ok_json(ordered_json{{"ok", true}});
}

Response Platform::configure(const json& request) {
  std::lock_guard lock(mutex_);
  if (!request.is_object()) return envelope(400, "Invalid body");
  if (request.contains("clockOffsetSeconds") && request["clockOffsetSeconds"].is_number_integer()) {
    settings_.clock_offset_s = request["clockOffsetSeconds"].get<std::int64_t>();
  }
  if (request.contains("rotateSeconds") && request["rotateSeconds"].is_number_integer()) {
    settings_.rotate_seconds = request["rotateSeconds"].get<std::int64_t>();
  }
  if (request.contains("graceSeconds") && request["graceSeconds"].is_number_integer()) {
    settings_.grace_seconds = request["graceSeconds"].get<std::int64_t>();
  }
  if (request.contains("serial") && request["serial"].is_string()) {
    auto it = hubs_.find(request["serial"].get<std::string>());
    if (it != hubs_.end() && request.contains("platformSyncEnabled") &&
        request["platformSyncEnabled"].is_boolean()) {
      it->second.platform_sync_enabled = request["platformSyncEnabled"].get<bool>();
    }
  }
  return ok_json(ordered_json{{"ok", true}});
}

}  // namespace dinodia::fake_platform
