#pragma once
/// \file Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_, PyTorch 1.13).
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::nn::utils {

/// Scales the gradients of `params` in place so that their total norm is at most
/// `max_norm`: total = ‖(‖g₁‖, ‖g₂‖, …)‖ in `norm_type` (infinity: the largest |g|),
/// every gradient *= min(1, max_norm / (total + 1e-6)). Parameters without a gradient
/// are skipped. Returns the total norm before clipping (0 when no gradient exists).
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

/// Clamps every gradient element of `params` to [−clip_value, clip_value], in place.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace tape::nn::utils
