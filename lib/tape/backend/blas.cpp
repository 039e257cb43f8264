#include "tape/backend/blas.hpp"

#include <cblas.h>

#include <climits>

#include "tape/backend/parallel.hpp"
#include "tape/core/error.hpp"

namespace tape::backend {

void dgemm(int64_t m, int64_t n, int64_t k, DMatrix a, DMatrix b, double beta, double* c, int64_t ldc) {
  // Debian's libopenblas takes 32-bit sizes
  for (int64_t v : {m, n, k, a.ld, b.ld, ldc})
    TAPE_CHECK(v <= INT_MAX, "matmul: Float64 sizes ", m, "x", k, " @ ", k, "x", n,
               " exceed the 32-bit dimensions of OpenBLAS");
  // Note: OpenBLAS's OpenMP build sizes its team from omp_get_max_threads() at
  // each call (and runs single-threaded inside a parallel region), so applying
  // tape's thread count here keeps it on the same team as oneDNN and our loops.
  sync_num_threads();
  cblas_dgemm(CblasRowMajor, a.trans ? CblasTrans : CblasNoTrans, b.trans ? CblasTrans : CblasNoTrans, int(m), int(n),
              int(k), 1.0, a.p, int(a.ld), b.p, int(b.ld), beta, c, int(ldc));
}

}  // namespace tape::backend
