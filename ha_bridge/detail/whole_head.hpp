#pragma once
// Internal to ha_bridge: reading a whole HTTP head, the client's request (http_session.cpp) and
// Home Assistant's answer (http_relay.cpp) alike. A head is parsed once it is all here (see
// http_head.hpp); one that is not complete within its limit is refused as Beast refuses it.
#include <cstddef>
#include <string_view>

#include "ha_bridge/detail/http_head.hpp"

namespace dinodia::ha_bridge::detail {

class WholeHead {
 public:
  explicit WholeHead(std::size_t limit) : limit_(limit) {}

  // Looks at everything read so far (`bytes`, which only grows between calls). True when done:
  // then `ec` says whether `head` was parsed, and used() is the head's length. False when more
  // must be read first.
  template <class Head>
  bool parse(Head& head, std::string_view bytes, boost::beast::error_code& ec) {
    const std::size_t end = find_head_end(bytes, scanned_);
    if (end != std::string_view::npos) {
      used_ = parse_head(head, bytes.substr(0, end), ec);
      if (ec == http::error::need_more) ec = http::error::partial_message;
      return true;
    }
    if (bytes.size() >= limit_) {
      ec = http::error::header_limit;
      return true;
    }
    return false;
  }
  std::size_t used() const { return used_; }

 private:
  std::size_t limit_;
  std::size_t scanned_ = 0;  // find_head_end's progress, so no byte is scanned twice
  std::size_t used_ = 0;
};

}  // namespace dinodia::ha_bridge::detail
