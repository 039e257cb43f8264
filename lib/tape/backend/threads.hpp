#pragma once
#include <cstddef>
/// \file Threads: one OpenMP team, shared by oneDNN and tape's own loops.

namespace tape {

/// Sets the thread count for oneDNN and tape's loops (default: TAPE_NUM_THREADS,
/// else OMP_NUM_THREADS, else the number of cores). Process-wide: it applies to
/// every thread, including std::threads started before or after the call.
void set_num_threads(int n);
/// The team size this thread's ops use.
int get_num_threads();

/// oneDNN primitives kept for reuse, and the bound on that number.
size_t primitive_cache_size();
size_t primitive_cache_capacity();

}  // namespace tape
