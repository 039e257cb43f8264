#pragma once
// Internal (not installed): the process-wide thread count, applied per thread.
#include <omp.h>

#include <atomic>

namespace tape::backend {

/// The team size set by TAPE_NUM_THREADS or set_num_threads(); 0 while unset
/// (then every thread keeps OpenMP's default, which is the same in all of them).
extern std::atomic<int> requested_threads;

// Note: omp_set_num_threads() only sets the calling thread's ICV, and a new
// std::thread starts from OpenMP's default again. So the count is a process-wide
// setting that each thread applies to itself, lazily, before it enters one of
// our parallel regions or calls oneDNN (which plans its threads from the
// caller's ICV): one relaxed load and a thread-local compare when nothing changed.
inline void sync_num_threads() {
  thread_local int applied = 0;
  const int n = requested_threads.load(std::memory_order_relaxed);
  if (n != applied) {
    omp_set_num_threads(n);
    applied = n;
  }
}

}  // namespace tape::backend
