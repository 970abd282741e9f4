#include "common/detached_thread.hpp"

#include <pthread.h>

#include <memory>

namespace dinodia::threads {
namespace {

void* run(void* arg) {
  std::unique_ptr<std::function<void()>> work(static_cast<std::function<void()>*>(arg));
  try {
    (*work)();
  } catch (...) {
    // A detached thread has nobody to report to; letting it escape would terminate the process.
  }
  return nullptr;
}

}  // namespace

bool start_detached(std::function<void()> work) noexcept {
  std::unique_ptr<std::function<void()>> owned;
  try {
    owned = std::make_unique<std::function<void()>>(std::move(work));
  } catch (...) {
    return false;
  }
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, run, owned.get());
  pthread_attr_destroy(&attr);
  if (rc != 0) return false;
  static_cast<void>(owned.release());  // the thread owns it now
  return true;
}

}  // namespace dinodia::threads
