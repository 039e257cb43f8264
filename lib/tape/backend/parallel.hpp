#pragma once
// Internal (not installed): the process-wide thread count, applied per thread,
// and the loop helpers that ops and optimizers share.
#include <omp.h>

#include <atomic>
#include <cstdint>

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

/// Elements below which a loop stays on one thread (team start-up costs more).
constexpr int64_t kParallelGrain = 32768;

// Note: small loops never enter an OpenMP region — even `if(false)` costs a
// futex round trip in libgomp, which would dominate a 16-element op.
/// `cost` is the elements one iteration touches (1 for elementwise loops).
template <class F>
inline void parallel_for(int64_t n, F&& f, int64_t cost = 1) {
  if (n * cost <= kParallelGrain || n == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  sync_num_threads();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

/// Like parallel_for, but hands each thread one contiguous range [begin, end):
/// for loops that need restrict-qualified pointers to vectorise (a byte store
/// may alias anything, so without them GCC keeps such a loop scalar), or that
/// keep per-thread partial results (indexed by omp_get_thread_num(), which is 0
/// when the loop stays on the calling thread). `cost`: elements one item touches.
template <class F>
inline void parallel_ranges(int64_t n, F&& f, int64_t cost = 1) {
  if (n * cost <= kParallelGrain || n == 1) {
    f(int64_t(0), n);
    return;
  }
  sync_num_threads();
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    f(n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace tape::backend
