#pragma once
/// \file Normalization ops with PyTorch's F.* signatures: batch_norm, layer_norm,
/// group_norm. Float32 (oneDNN for batch and layer normalization), Float64,
/// BFloat16 (computed in Float32); differentiable twice (create_graph).
#include <cstdint>

#include "tape/core/tensor.hpp"

namespace tape {

/// Batch normalization of x [N, C], [N, C, L] or [N, C, H, W], statistics per
/// channel over every dim but 1: y = (x − mean) / √(var + eps) · weight + bias
/// (weight, bias [C], optional).
/// training: mean and the biased variance of the batch; running_mean /
/// running_var ([C], optional here) are then updated in place (not recorded):
/// running = (1 − momentum)·running + momentum·batch, with the unbiased
/// variance for running_var. A batch with no elements leaves them unchanged.
/// Not training: the running statistics are used (and must be given).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight = {},
                  const Tensor& bias = {}, bool training = false, double momentum = 0.1, double eps = 1e-5);

/// Layer normalization over the trailing dims of x that equal normalized_shape:
/// y = (x − mean) / √(var + eps) · weight + bias (weight, bias of
/// normalized_shape, optional; biased variance).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

/// Group normalization of x [N, C, *]: the C channels are split into num_groups
/// groups, each normalised over its channels and all spatial positions, then
/// scaled per channel by weight [C] and shifted by bias [C] (optional).
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

}  // namespace tape
