#pragma once
// How long tests wait for something to happen. Under emulation (scripts/test-arch.sh runs the ARM
// suites under qemu-user) the agent, the fakes and the tests all run several times slower, so the
// test side's deadlines are multiplied by DINODIA_TEST_TIME_SCALE (a number >= 1, default 1; read
// once). Only waits are scaled: what a test asserts, and the timeouts the product is configured
// with, stay the same. docs/building.md, "ARM test suites".
#include <chrono>

namespace dinodia::testing {

double time_scale();

// `wait` times the scale, rounded up to a whole millisecond.
std::chrono::milliseconds scaled(std::chrono::milliseconds wait);

}  // namespace dinodia::testing
