#pragma once
/// \file Fused ops: several layers run as one op, with the results (and gradients)
/// of their composition but fewer passes over memory (issue 15).
#include <cstdint>

#include "tape/core/tensor.hpp"
#include "tape/ops/ops.hpp"

namespace tape {

/// max_pool2d(relu(conv2d(x, w, b, stride, padding, dilation, groups)), pool_kernel, pool_stride)
/// as one op (PyTorch has no such function: it is LeNet's Conv2d → ReLU → MaxPool2d).
/// Float32 with groups 1 and dilation 1 runs on oneDNN in slices of the batch:
/// the convolution (ReLU as its post-op) writes a blocked tensor that the pooling
/// reads while it is still in cache, and only the pooled output is written in
/// NCHW; backward likewise. On a CPU with AVX-512, with stride 1 and 2×2 pooling,
/// hand-written kernels take the passes oneDNN 2.6 runs far below the machine's
/// GEMM rate: the whole block when the input has 1–3 channels and needs no
/// gradient (LeNet's conv1), and backward-data without padding (LeNet's conv2);
/// TAPE_DIRECT_CONV=0 turns them off (docs/performance.md). Under an AutocastGuard the convolution's passes
/// multiply in bf16 when the input has 4 or more channels (Float32 output and
/// gradients; the backward follows the forward); with fewer it stays Float32,
/// which is faster there (conv_block.cpp's note). Every other case (Float64, BFloat16 tensors, dilation, groups,
/// non-finite inputs, TAPE_FUSE=0) runs the composition itself, which also
/// reports invalid arguments. pool_stride -1 means pool_kernel.
/// Note: under create_graph the backward recomputes the composition and
/// differentiates it (a nested autograd::grad), so higher derivatives are exact.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t pool_kernel,
                              int64_t pool_stride = -1, IntPair stride = 1, IntPair padding = 0, IntPair dilation = 1,
                              int64_t groups = 1);

/// False when the environment variable TAPE_FUSE is "0" (read on each call):
/// then the fused ops run their compositions and nn::Sequential runs every
/// module on its own — for comparisons and tests.
bool fusion_enabled();

}  // namespace tape
