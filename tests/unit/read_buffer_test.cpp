// ReadBuffer (ha_bridge/detail/read_buffer): the relay's read buffer, whose bytes only move when
// more room is asked for, so that the parsed head's views stay valid until then.
#include "ha_bridge/detail/read_buffer.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using dinodia::ha_bridge::detail::ReadBuffer;

namespace {
void put(ReadBuffer& b, const std::string& bytes) {
  auto room = b.prepare(bytes.size());
  REQUIRE(room.size() >= bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  b.commit(bytes.size());
}
}  // namespace

TEST_CASE("ReadBuffer: bytes in order, consume from the front, views stay put until prepare") {
  ReadBuffer b;
  CHECK(b.empty());
  put(b, "GET / HTTP/1.1\r\n\r\nnext");
  CHECK(b.readable() == "GET / HTTP/1.1\r\n\r\nnext");
  const auto head = b.readable().substr(0, 18);
  b.consume(18);
  CHECK(b.readable() == "next");
  CHECK(head == "GET / HTTP/1.1\r\n\r\n");  // consuming moved nothing
  b.consume(100);                           // more than there is: empties
  CHECK(b.empty());
  CHECK(b.size() == 0);
}

TEST_CASE("ReadBuffer: the first block is the small standard one and grows by doubling") {
  ReadBuffer b;
  b.prepare(1);
  CHECK(b.capacity() == ReadBuffer::kSmallBlock);
  put(b, std::string(3000, 'a'));
  b.prepare(2000);  // 1096 free at the end: a larger block, the bytes carried over
  CHECK(b.capacity() == 2 * ReadBuffer::kSmallBlock);
  CHECK(b.readable() == std::string(3000, 'a'));
  ReadBuffer large;
  large.prepare(ReadBuffer::kLargeBlock);
  CHECK(large.capacity() == ReadBuffer::kLargeBlock);
}

TEST_CASE("ReadBuffer: asking for room moves the unread bytes to the front when they fit") {
  ReadBuffer b;
  put(b, std::string(4000, 'x') + "tail");
  b.consume(4000);
  const char* before = b.readable().data();
  b.prepare(1024);  // 92 free at the end, but 4092 before the unread bytes: compacted
  CHECK(b.capacity() == ReadBuffer::kSmallBlock);
  CHECK(b.readable() == "tail");
  CHECK(b.readable().data() != before);
}

TEST_CASE("ReadBuffer: released standard blocks are reused by the same thread") {
  const char* first = nullptr;
  {
    ReadBuffer b;
    first = static_cast<const char*>(b.prepare(ReadBuffer::kLargeBlock).data());
  }  // released into this thread's cache
  ReadBuffer again;
  CHECK(static_cast<const char*>(again.prepare(ReadBuffer::kLargeBlock).data()) == first);
}
