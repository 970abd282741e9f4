#include "agent/legacy_token_state.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/text.hpp"

namespace dinodia::agent {
namespace {

constexpr const char* kExportDigestKey = "legacy_file_sha256";
constexpr const char* kImportedKey = "legacy_file_imported";

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void write_all(int fd, const std::string& content) {
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string legacy_token_state_path(const Environment& env) {
  return env.token_state_path ? *env.token_state_path : env.data_dir + "/dinodia_token_state.json";
}

std::optional<LegacyTokenState> parse_legacy_token_state(const std::string& text,
                                                         std::string* error) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    if (error) *error = j.is_discarded() ? "not valid JSON" : "not a JSON object";
    return std::nullopt;
  }
  LegacyTokenState s;
  if (auto it = j.find("hubTokenHashes"); it != j.end() && it->is_array()) {
    for (const auto& h : *it) {
      if (!h.is_string()) continue;
      std::string v = text::lower(text::trim(h.get<std::string>()));
      if (!v.empty()) s.hashes.push_back(std::move(v));
    }
  }
  for (const char* key : {"agentSeenVersion", "latestVersion", "version"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number()) continue;
    double v = it->get<double>();
    if (!std::isfinite(v) || v < 0 || v > 9.0e15) {
      s.agent_seen_version = 0;
    } else {
      s.agent_seen_version = static_cast<std::int64_t>(std::floor(v));
    }
    break;
  }
  if (auto it = j.find("syncSecret"); it != j.end() && it->is_string()) {
    s.sync_secret = std::string(text::trim(it->get<std::string>()));
  }
  return s;
}

std::string render_legacy_token_state(const TokenState& state, const std::string& sync_secret) {
  // Key order as the legacy agent writes after a sync (JSON.stringify insertion order).
  nlohmann::ordered_json j;
  j["agentSeenVersion"] = state.agent_seen_version;
  if (!sync_secret.empty()) j["syncSecret"] = sync_secret;
  j["hubTokenHashes"] = state.hashes;
  j["updatedAt"] = state.updated_at.empty() ? clock::iso8601() : state.updated_at;
  if (!state.last_sync_at.empty()) j["lastSyncAt"] = state.last_sync_at;
  j["publishedVersion"] =
      state.published_version ? nlohmann::ordered_json(*state.published_version) : nullptr;
  j["latestVersion"] =
      state.latest_version ? nlohmann::ordered_json(*state.latest_version) : nullptr;
  return j.dump(2);
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  }
  try {
    ::fchmod(fd, 0600);  // O_CREAT's mode does not apply to a leftover temp file
    write_all(fd, content);
    if (::fsync(fd) != 0) throw std::runtime_error(std::strerror(errno));
    if (::close(fd) != 0) {
      fd = -1;
      throw std::runtime_error(std::strerror(errno));
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error(std::strerror(errno));
  } catch (const std::exception& e) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + e.what());
  }
  // Make the rename itself durable.
  int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

LegacyTokenStateFile::LegacyTokenStateFile(std::string path, StateStore& store)
    : path_(std::move(path)), store_(store) {}

bool LegacyTokenStateFile::import_if_new(const std::string& serial) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return false;  // no legacy agent ran here (or the file was removed)
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  const std::string digest = crypto::sha256_hex(text);
  if (store_.meta(kExportDigestKey) == digest) return false;  // our own last write
  if (store_.meta(kImportedKey) == digest) return false;      // already imported this content

  std::string error;
  auto parsed = parse_legacy_token_state(text, &error);
  if (!parsed) {
    log::warn("Ignoring malformed legacy token state file",
              log::Fields().add("path", path_).add("error", error));
    store_.set_meta(kImportedKey, digest);
    return false;
  }
  TokenState after =
      store_.import_state(parsed->hashes, parsed->agent_seen_version, parsed->sync_secret, serial);
  store_.set_meta(kImportedKey, digest);
  log::info("Imported legacy token state", log::Fields()
                                               .add("path", path_)
                                               .add("agentSeenVersion", after.agent_seen_version)
                                               .add("hashes", after.hashes.size())
                                               .add("hasSyncSecret", !parsed->sync_secret.empty()));
  return true;
}

bool LegacyTokenStateFile::export_current() {
  try {
    auto pairing = store_.pairing();
    const std::string content =
        render_legacy_token_state(store_.token_state(), pairing ? pairing->sync_secret : "");
    write_file_atomically(path_, content);
    store_.set_meta(kExportDigestKey, crypto::sha256_hex(content));
    return true;
  } catch (const std::exception& e) {
    log::warn("Could not update the legacy token state file",
              log::Fields().add("path", path_).add("error", e.what()));
    return false;
  }
}

}  // namespace dinodia::agent
