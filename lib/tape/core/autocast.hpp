#pragma once
/// \file Automatic mixed precision (bf16 autocast): AutocastGuard and the CPU's
/// bf16 support. See docs/precision.md.
#include <string>

#include "tape/core/dtype.hpp"

namespace tape {

/// RAII, thread-local (like NoGradGuard): inside its scope matmul, linear, conv2d
/// and conv_transpose2d of Float32 operands multiply in bfloat16 on oneDNN's bf16
/// kernels, accumulating in float32; their outputs and every gradient stay Float32
/// (the parameters are the float32 master weights). Elementwise ops, reductions,
/// losses and Float64 tensors are not affected. Only Dtype::BFloat16 is accepted.
/// On a CPU without bf16 kernels (bf16_supported() false) it prints one line to
/// stderr, once per process, and autocast stays off: the ops run in Float32.
struct AutocastGuard {
  explicit AutocastGuard(Dtype dtype = Dtype::BFloat16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_;
};

/// True inside an AutocastGuard on this thread (and the CPU has bf16 kernels).
bool autocast_enabled();
/// The dtype autocast multiplies in (BFloat16).
Dtype autocast_dtype();
/// True when oneDNN's kernels for this CPU include bf16 ones (AVX512-BF16 or AMX);
/// ONEDNN_MAX_CPU_ISA can lower oneDNN's ISA below that.
bool bf16_supported();
/// oneDNN's instruction set on this CPU as a readable name, e.g.
/// "avx512_core_bf16 (AVX-512 with bf16)", "avx512_core_amx (AMX)", "avx2".
std::string cpu_isa_name();

}  // namespace tape
