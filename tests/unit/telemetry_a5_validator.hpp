#pragma once
// Independent oracle for the platform's validation of token-state telemetry
// (docs/platform-protocol.md#telemetry-fields), written from the platform's rules, not from the
// telemetry code. Each function returns "" when the platform would accept the value, otherwise
// the reason it would drop it.
#include <cmath>
#include <regex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace a5 {

using Json = nlohmann::json;

inline bool iso_date(const Json& v) {
  static const std::regex re(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

inline bool non_negative_number(const Json& v) {
  if (v.is_number()) return std::isfinite(v.get<double>()) && v.get<double>() >= 0;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && d >= 0;
  }
  return false;
}

inline bool non_negative_int(const Json& v) {
  return (v.is_number_integer() || v.is_number_unsigned()) && v.get<double>() >= 0;
}

inline std::string trimmed(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n\f\v");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n\f\v") - b + 1);
}

// lanBaseUrl
inline std::string lan_base_url(const Json& v) {
  static const std::regex re(R"(^http://(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):8123/?$)");
  std::smatch m;
  if (!v.is_string()) return "not a string";
  const std::string s = v.get<std::string>();
  if (!std::regex_match(s, m, re)) return "not http://<ipv4>:8123";
  int o[4];
  for (int i = 0; i < 4; ++i) {
    o[i] = std::stoi(m[i + 1]);
    if (o[i] > 255) return "octet out of range";
  }
  if (o[0] == 10) return "";
  if (o[0] == 172 && o[1] >= 16 && o[1] <= 31) return "";
  if (o[0] == 192 && o[1] == 168) return "";
  return "not a private IPv4";
}

// heatingUsage, one device row.
inline std::string heating_row(const Json& r, int schema) {
  if (!r.is_object()) return "row not an object";
  if (!r.contains("label") || !r["label"].is_string()) return "label missing";
  const std::string label = r["label"];
  if (label != "Boiler" && label != "Radiator") return "label not Boiler/Radiator";
  if (!r.contains("entityId") || !r["entityId"].is_string() ||
      trimmed(r["entityId"].get<std::string>()).empty())
    return "entityId";
  for (const char* k : {"onSeconds", "offSeconds"})
    if (!r.contains(k) || !non_negative_number(r[k])) return std::string(k);
  if (r.contains("unknownSeconds") && !non_negative_number(r["unknownSeconds"]))
    return "unknownSeconds";
  if (!r.contains("lastSeenAt") || !iso_date(r["lastSeenAt"])) return "lastSeenAt";
  if (schema == 2 && label == "Boiler") {
    if (r.contains("efficiencyWeightedOnSeconds") &&
        !(r["efficiencyWeightedOnSeconds"].is_number() &&
          non_negative_number(r["efficiencyWeightedOnSeconds"])))
      return "efficiencyWeightedOnSeconds";
    if (r.contains("efficiencyOnSeconds") && !non_negative_int(r["efficiencyOnSeconds"]))
      return "efficiencyOnSeconds";
    if (r.contains("efficiencyBand")) {
      if (!r["efficiencyBand"].is_string()) return "efficiencyBand";
      std::string b = trimmed(r["efficiencyBand"].get<std::string>());
      if (b.size() != 1 || std::string("ABCDEFGabcdefg").find(b[0]) == std::string::npos)
        return "efficiencyBand";
    }
    if (r.contains("efficiencyBandVersion") && !non_negative_int(r["efficiencyBandVersion"]))
      return "efficiencyBandVersion";
  }
  return "";
}

inline std::string heating_usage(const Json& v, std::size_t max_rows = 100) {
  if (!v.is_object()) return "envelope not an object";
  if (v.value("schemaVersion", Json()) != Json(2)) return "schemaVersion not 2";
  if (v.contains("capturedAt") && !iso_date(v["capturedAt"])) return "capturedAt";
  if (!v.contains("devices") || !v["devices"].is_array()) return "devices not an array";
  if (v["devices"].size() > max_rows) return "more rows than the agent may send";
  for (const auto& r : v["devices"]) {
    auto e = heating_row(r, 2);
    if (!e.empty()) return "row " + r.value("entityId", std::string("?")) + ": " + e;
  }
  return "";
}

// electricUsage row (the newer platform's rules).
inline std::string electric_row(const Json& r, long long now_ms_for_future_check = 0) {
  static const std::regex id_re(R"(^(light|switch)\.\S{1,200}$)", std::regex::icase);
  auto opt_str = [&](const char* k, std::size_t max) {
    if (!r.contains(k) || r[k].is_null()) return true;
    return r[k].is_string() && r[k].get<std::string>().size() <= max * 4;  // bytes >= code points
  };
  auto iso_or_null = [&](const char* k) {
    return r.contains(k) && (r[k].is_null() || iso_date(r[k]));
  };
  if (!r.is_object()) return "row not an object";
  if (r.value("label", Json()) != Json("Light")) return "label";
  if (!r.contains("entityId") || !r["entityId"].is_string() ||
      !std::regex_match(r["entityId"].get<std::string>(), id_re))
    return "entityId";
  if (!opt_str("entityName", 200)) return "entityName";
  if (!iso_or_null("trackingStartedAt")) return "trackingStartedAt";
  if (!iso_or_null("assignmentStartedAt")) return "assignmentStartedAt";
  for (const char* k : {"trackingEpoch", "assignmentEpoch"}) {
    if (!r.contains(k) || !r[k].is_string() || r[k].get<std::string>().empty() ||
        r[k].get<std::string>().size() > 128)
      return std::string(k);
  }
  if (!opt_str("areaId", 128)) return "areaId";
  if (!opt_str("areaName", 200)) return "areaName";
  for (const char* k : {"onSeconds", "offSeconds", "unknownSeconds"})
    if (!r.contains(k) || !non_negative_int(r[k])) return std::string(k);
  if (!r.contains("lastSeenAt") || !iso_date(r["lastSeenAt"])) return "lastSeenAt";
  (void)now_ms_for_future_check;
  for (const char* k : {"lastWasOn", "lastWasKnown", "retired"})
    if (r.contains(k) && !r[k].is_boolean()) return std::string(k);
  return "";
}

inline std::string electric_usage(const Json& v) {
  if (!v.is_object() || v.value("schemaVersion", Json()) != Json(1)) return "envelope";
  if (!v.contains("devices") || !v["devices"].is_array()) return "devices";
  if (v["devices"].size() > 200) return "more than 200 rows (the excess is skipped)";
  for (const auto& r : v["devices"]) {
    auto e = electric_row(r);
    if (!e.empty()) return "row " + r.value("entityId", std::string("?")) + ": " + e;
  }
  return "";
}

// haAreas
inline std::string ha_areas(const Json& v) {
  if (!v.is_object() || v.value("schemaVersion", Json()) != Json(1)) return "envelope";
  if (!v.contains("capturedAt") || !iso_date(v["capturedAt"])) return "capturedAt";
  if (!v.contains("areas") || !v["areas"].is_array()) return "areas";
  if (v["areas"].size() > 500) return "more than 500";
  std::set<std::string> names;
  for (const auto& a : v["areas"]) {
    if (!a.is_object() || !a.contains("name") || !a["name"].is_string()) return "area name";
    std::string n = trimmed(a["name"].get<std::string>());
    if (n.empty()) return "blank name";
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!names.insert(n).second) return "duplicate name " + n;
    if (a.contains("areaId") &&
        (!a["areaId"].is_string() || a["areaId"].get<std::string>().empty()))
      return "areaId";
  }
  return "";
}

}  // namespace a5
