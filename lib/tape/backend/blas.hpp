#pragma once
// Internal (not installed): double-precision GEMM on OpenBLAS. oneDNN 2.6 has
// no f64 matmul, so Float64 matmul, linear and conv2d run here (see "OpenBLAS"
// in docs/dependencies.md); Float32 stays on oneDNN. Only blas.cpp includes cblas.h.
#include <cstdint>

namespace tape::backend {

/// A row-major matrix operand: element (i, j) of op(M) is p[i·ld + j], or
/// p[j·ld + i] when `trans` (a transposed view passed without a copy).
struct DMatrix {
  const double* p;
  int64_t ld;
  bool trans = false;
};

/// C = A·B + beta·C, with A m×k, B k×n and C m×n row-major (leading dim ldc).
/// Runs on OpenBLAS's OpenMP build with tape's thread count; inside one of our
/// parallel regions it runs on the calling thread only.
void dgemm(int64_t m, int64_t n, int64_t k, DMatrix a, DMatrix b, double beta, double* c, int64_t ldc);

}  // namespace tape::backend
