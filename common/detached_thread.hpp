#pragma once

#include <functional>

namespace dinodia::threads {

// Runs `work` on a new thread that is created detached. Not std::thread(...).detach():
// glibc's pthread_detach reads the thread's descriptor just after marking it detached, and a
// thread that finished in that instant has already freed the descriptor and its stack, which
// another thread's exit may unmap: a segfault in pthread_detach on a busy machine (seen in the
// Home Assistant stand-in under connection churn). Returns false, without running `work`, when
// no thread can be started.
bool start_detached(std::function<void()> work) noexcept;

}  // namespace dinodia::threads
