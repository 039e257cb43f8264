#pragma once
/// \file Normalization layers with PyTorch's defaults: BatchNorm1d, BatchNorm2d,
/// LayerNorm, GroupNorm (functional forms in tape/ops/norm.hpp).
#include <cstdint>
#include <string>

#include "tape/nn/module.hpp"
#include "tape/nn/options.hpp"

namespace tape::nn {

struct BatchNormOptions {
  explicit BatchNormOptions(int64_t num_features) : num_features_(num_features) {}
  TAPE_ARG(int64_t, num_features);
  TAPE_ARG(double, eps) = 1e-5;
  TAPE_ARG(double, momentum) = 0.1;  ///< running = (1 − momentum)·running + momentum·batch
  TAPE_ARG(bool, affine) = true;     ///< learnable weight (ones) and bias (zeros)
  /// Keep running_mean / running_var / num_batches_tracked and use them in eval
  /// mode; without them every forward normalises with the batch's statistics.
  TAPE_ARG(bool, track_running_stats) = true;
};

/// What BatchNorm1d and BatchNorm2d share (PyTorch's _BatchNorm): per-channel
/// batch statistics in training mode (updating the running ones), the running
/// statistics in eval mode. Parameters weight [C] (ones) and bias [C] (zeros)
/// when affine; buffers running_mean [C] (zeros), running_var [C] (ones) and
/// num_batches_tracked (Int64 scalar, +1 per training forward) when tracking.
class BatchNormBase : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  /// running_mean ← 0, running_var ← 1, num_batches_tracked ← 0.
  void reset_running_stats();
  /// reset_running_stats(), weight ← 1, bias ← 0.
  void reset_parameters();

  BatchNormOptions options;
  Tensor weight, bias;                                     ///< [C], undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;  ///< undefined unless track_running_stats

 protected:
  explicit BatchNormBase(const BatchNormOptions& options);
  /// Throws, naming the layer and the shapes, unless x is an input this layer takes.
  virtual void check_input(const Tensor& x) const = 0;
};

/// Batch normalization of [N, C] or [N, C, L] input.
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features) : BatchNorm1d(BatchNormOptions(num_features)) {}
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNormBase(options) {}
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

/// Batch normalization of [N, C, H, W] input.
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features) : BatchNorm2d(BatchNormOptions(num_features)) {}
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNormBase(options) {}
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

struct LayerNormOptions {
  explicit LayerNormOptions(Shape normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  TAPE_ARG(Shape, normalized_shape);
  TAPE_ARG(double, eps) = 1e-5;
  TAPE_ARG(bool, elementwise_affine) = true;  ///< learnable weight (ones) and bias (zeros) of normalized_shape
};

/// Normalises each sample over its trailing normalized_shape dims (input [*, normalized_shape]).
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape) : LayerNorm(LayerNormOptions(std::move(normalized_shape))) {}
  explicit LayerNorm(const LayerNormOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  /// weight ← 1, bias ← 0.
  void reset_parameters();

  LayerNormOptions options;
  Tensor weight, bias;  ///< normalized_shape, undefined unless elementwise_affine
};

struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
  TAPE_ARG(int64_t, num_groups);
  TAPE_ARG(int64_t, num_channels);
  TAPE_ARG(double, eps) = 1e-5;
  TAPE_ARG(bool, affine) = true;  ///< learnable weight (ones) and bias (zeros) per channel
};

/// Splits the channels of [N, C, *] input into num_groups groups and normalises
/// each (sample, group) over its channels and positions; the same in train and eval.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels) : GroupNorm(GroupNormOptions(num_groups, num_channels)) {}
  explicit GroupNorm(const GroupNormOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;
  /// weight ← 1, bias ← 0.
  void reset_parameters();

  GroupNormOptions options;
  Tensor weight, bias;  ///< [num_channels], undefined unless affine
};

}  // namespace tape::nn
