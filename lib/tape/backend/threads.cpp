#include "tape/backend/threads.hpp"

#include <omp.h>

#include <cstdlib>
#include <string>

#include "tape/core/error.hpp"

namespace tape {

namespace {
// Applies TAPE_NUM_THREADS once, when the library loads.
struct ThreadInit {
  ThreadInit() {
    if (const char* s = std::getenv("TAPE_NUM_THREADS")) {
      int n = std::atoi(s);
      if (n > 0) omp_set_num_threads(n);
    }
  }
} const thread_init;
}  // namespace

void set_num_threads(int n) {
  TAPE_CHECK(n > 0, "set_num_threads(): thread count must be positive, got ", n);
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace tape
