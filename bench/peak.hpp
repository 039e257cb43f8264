#pragma once
// The machine's measured GEMM peak: raw oneDNN matmul primitives (built once,
// executed on this thread's stream), best of several runs over square sizes.
// f32, and bf16 operands with f32 output (what autocast runs) when the CPU has
// bf16 kernels. This is the roof the roofline rows divide by.
#include <dnnl.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace bench {

/// Best GFLOP/s of an n³ product with src/weights of type `in` and an f32 dst;
/// 0 when oneDNN has only its reference implementation for it here.
inline double gemm_gflops(dnnl::memory::data_type in, int64_t n, int reps = 8) {
  using namespace dnnl;
  using dt = memory::data_type;
  static engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::desc a_md({n, n}, in, memory::format_tag::ab), b_md({n, n}, in, memory::format_tag::ab),
      c_md({n, n}, dt::f32, memory::format_tag::ab);
  // memory descriptors → primitive descriptor → primitive → execute
  matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
  if (std::string(pd.impl_info_str()).rfind("ref", 0) == 0) return 0;  // no fast kernel for this type on this CPU
  matmul prim(pd);
  memory a(a_md, eng), b(b_md, eng), c(c_md, eng);
  std::fill_n(static_cast<char*>(a.get_data_handle()), a_md.get_size(), 0);  // zero bits: 0.0 in f32 and bf16
  std::fill_n(static_cast<char*>(b.get_data_handle()), b_md.get_size(), 0);
  std::vector<double> times;
  for (int i = 0; i < reps + 2; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    strm.wait();
    if (i >= 2) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * double(n) * double(n) * double(n) / *std::min_element(times.begin(), times.end()) / 1e9;
}

/// The best of 1024³ and 2048³ (the largest sizes' rate is the machine's, the
/// smaller one sometimes wins on a noisy VM).
inline double gemm_peak(dnnl::memory::data_type in) {
  return std::max(gemm_gflops(in, 1024, 12), gemm_gflops(in, 2048, 4));
}

}  // namespace bench
