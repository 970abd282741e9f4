#pragma once
// Invariant checks for the fuzz targets. A broken invariant aborts, which libFuzzer reports as
// a crash and saves the input as an artifact, like a sanitizer finding.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, what)                                                               \
  do {                                                                                            \
    if (!(condition)) {                                                                           \
      std::fprintf(stderr, "FUZZ INVARIANT BROKEN at %s:%d: %s [%s]\n", __FILE__, __LINE__, what, \
                   #condition);                                                                   \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)
