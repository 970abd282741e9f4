#include "tests/support/time_scale.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dinodia::testing {

double time_scale() {
  static const double scale = [] {
    const char* text = std::getenv("DINODIA_TEST_TIME_SCALE");
    if (text == nullptr || *text == '\0') return 1.0;
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (*end != '\0' || !(value >= 1.0 && value <= 100.0)) {
      std::fprintf(stderr, "DINODIA_TEST_TIME_SCALE='%s' is not a number from 1 to 100\n", text);
      std::abort();
    }
    return value;
  }();
  return scale;
}

std::chrono::milliseconds scaled(std::chrono::milliseconds wait) {
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(
      std::ceil(static_cast<double>(wait.count()) * time_scale())));
}

}  // namespace dinodia::testing
