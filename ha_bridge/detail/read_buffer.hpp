#pragma once
// Internal to ha_bridge: the byte buffer a connection reads into. Unlike beast::flat_buffer it
// only ever moves its bytes when asked for more room (`prepare`), so views into the readable
// bytes (the parsed header's fields) stay valid until the next `prepare`, and its storage can
// come from a small per-thread cache instead of a fresh allocation per request.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace dinodia::ha_bridge::detail {

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { release(); }

  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::size_t capacity() const { return capacity_; }

  // Room for at least `min_free` more bytes (and whatever else is free at the end): moves the
  // readable bytes to the front or to a larger block when needed, which invalidates views.
  boost::asio::mutable_buffer prepare(std::size_t min_free) {
    if (capacity_ - end_ < min_free) {
      const std::size_t used = end_ - begin_;
      if (capacity_ - used >= min_free && data_) {
        std::memmove(data_.get(), data_.get() + begin_, used);
      } else {
        std::size_t grown = std::max<std::size_t>(capacity_ * 2, kSmallBlock);
        while (grown - used < min_free) grown *= 2;
        auto next = allocate(grown);
        if (used > 0) std::memcpy(next.get(), data_.get() + begin_, used);
        release();
        data_ = std::move(next);
        capacity_ = grown;
      }
      begin_ = 0;
      end_ = used;
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) { end_ += n; }
  void consume(std::size_t n) {
    begin_ += std::min(n, end_ - begin_);
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Gives the storage back (to the per-thread cache when it is a standard block).
  void release() {
    if (data_) recycle(std::move(data_), capacity_);
    capacity_ = begin_ = end_ = 0;
  }

  // Block sizes the per-thread cache keeps: a request head fits the small one; the large one
  // holds a whole small answer or the first part of a large one (see http_relay).
  static constexpr std::size_t kSmallBlock = std::size_t{4} * 1024;
  static constexpr std::size_t kLargeBlock = std::size_t{64} * 1024;

 private:
  // Each worker thread keeps a few freed blocks of the two standard sizes: reading a response
  // into a fresh 64 KiB block per request made glibc give the memory back and fault it in
  // again every few requests (madvise + page faults on the hot path).
  struct Cache {
    std::vector<std::unique_ptr<char[]>> small;
    std::vector<std::unique_ptr<char[]>> large;
  };
  static constexpr std::size_t kCachedBlocks = 16;
  static Cache& cache() {
    thread_local Cache blocks;
    return blocks;
  }
  static std::unique_ptr<char[]> allocate(std::size_t size) {
    auto& c = cache();
    auto* list = size == kSmallBlock ? &c.small : size == kLargeBlock ? &c.large : nullptr;
    if (list && !list->empty()) {
      auto block = std::move(list->back());
      list->pop_back();
      return block;
    }
    return std::unique_ptr<char[]>(new char[size]);
  }
  static void recycle(std::unique_ptr<char[]> block, std::size_t size) {
    auto& c = cache();
    auto* list = size == kSmallBlock ? &c.small : size == kLargeBlock ? &c.large : nullptr;
    if (list && list->size() < kCachedBlocks) list->push_back(std::move(block));
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace dinodia::ha_bridge::detail
