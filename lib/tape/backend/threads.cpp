#include "tape/backend/threads.hpp"

#include <cstdlib>
#include <string>

#include "tape/backend/parallel.hpp"
#include "tape/core/error.hpp"

namespace tape {

std::atomic<int> backend::requested_threads{0};

namespace {
// Applies TAPE_NUM_THREADS once, when the library loads (to every thread, see
// backend::sync_num_threads).
struct ThreadInit {
  ThreadInit() {
    if (const char* s = std::getenv("TAPE_NUM_THREADS")) {
      int n = std::atoi(s);
      if (n > 0) backend::requested_threads = n;
    }
  }
} const thread_init;
}  // namespace

void set_num_threads(int n) {
  TAPE_CHECK(n > 0, "set_num_threads(): thread count must be positive, got ", n);
  backend::requested_threads = n;
  backend::sync_num_threads();
}

int get_num_threads() {
  backend::sync_num_threads();
  return omp_get_max_threads();
}

}  // namespace tape
