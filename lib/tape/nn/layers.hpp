#pragma once
/// \file Layers with parameters or shape logic: Linear, Conv2d, ConvTranspose2d,
/// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Identity. Each takes
/// either plain constructor arguments or a LibTorch-style options struct:
/// Conv2d(Conv2dOptions(1, 6, {5, 3}).stride({2, 1}).padding(2)).
#include <cstdint>
#include <string>

#include "tape/nn/module.hpp"
#include "tape/nn/options.hpp"
#include "tape/ops/ops.hpp"

namespace tape::nn {

using tape::IntPair;  ///< one int or {h, w}: kernel sizes, strides, paddings, dilations

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TAPE_ARG(int64_t, in_features);
  TAPE_ARG(int64_t, out_features);
  TAPE_ARG(bool, bias) = true;
};

/// y = x·Wᵀ + b on the last dim. weight [out, in] ~ He-normal N(0, 2/in); bias zeros.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  explicit Linear(const LinearOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  /// Re-draws the weight (He-normal) and zeros the bias.
  void reset_parameters();

  LinearOptions options;
  Tensor weight;  ///< [out_features, in_features]
  Tensor bias;    ///< [out_features], undefined when options.bias() is false
};

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TAPE_ARG(int64_t, in_channels);
  TAPE_ARG(int64_t, out_channels);
  TAPE_ARG(IntPair, kernel_size);
  TAPE_ARG(IntPair, stride) = 1;
  TAPE_ARG(IntPair, padding) = 0;
  TAPE_ARG(IntPair, dilation) = 1;
  TAPE_ARG(int64_t, groups) = 1;
  TAPE_ARG(bool, bias) = true;
};

/// 2-D convolution of NCHW input. weight [out, in/groups, kh, kw] ~ He-normal with
/// fan_in = in/groups·kh·kw; bias zeros.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size, IntPair stride = 1, IntPair padding = 0,
         bool bias = true);
  explicit Conv2d(const Conv2dOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  void reset_parameters();

  Conv2dOptions options;
  Tensor weight;  ///< [out_channels, in_channels / groups, kh, kw]
  Tensor bias;    ///< [out_channels] or undefined
};

struct ConvTranspose2dOptions {
  ConvTranspose2dOptions(int64_t in_channels, int64_t out_channels, IntPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TAPE_ARG(int64_t, in_channels);
  TAPE_ARG(int64_t, out_channels);
  TAPE_ARG(IntPair, kernel_size);
  TAPE_ARG(IntPair, stride) = 1;
  TAPE_ARG(IntPair, padding) = 0;
  TAPE_ARG(IntPair, output_padding) = 0;  ///< extra rows/cols at the bottom/right; < stride or dilation
  TAPE_ARG(int64_t, groups) = 1;
  TAPE_ARG(bool, bias) = true;
  TAPE_ARG(IntPair, dilation) = 1;
};

/// Transposed 2-D convolution (the gradient of Conv2d with respect to its input).
/// weight [in, out/groups, kh, kw] ~ kaiming_uniform_(a=√5) with fan_in = out/groups·kh·kw,
/// bias ~ U(−1/√fan_in, 1/√fan_in), as in PyTorch.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size, IntPair stride = 1,
                  IntPair padding = 0);
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  void reset_parameters();

  ConvTranspose2dOptions options;
  Tensor weight;  ///< [in_channels, out_channels / groups, kh, kw]
  Tensor bias;    ///< [out_channels] or undefined
};

struct MaxPool2dOptions {
  explicit MaxPool2dOptions(int64_t kernel_size) : kernel_size_(kernel_size) {}
  TAPE_ARG(int64_t, kernel_size);
  TAPE_ARG(int64_t, stride) = -1;  ///< -1: same as kernel_size
};

/// Max pooling over square windows of NCHW input.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = -1);
  explicit MaxPool2d(const MaxPool2dOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;

  MaxPool2dOptions options;  ///< stride() is resolved (never -1)
};

struct AvgPool2dOptions {
  explicit AvgPool2dOptions(IntPair kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}
  TAPE_ARG(IntPair, kernel_size);
  TAPE_ARG(IntPair, stride);  ///< defaults to kernel_size
  TAPE_ARG(IntPair, padding) = 0;
  TAPE_ARG(bool, ceil_mode) = false;
  TAPE_ARG(bool, count_include_pad) = true;
};

/// Average pooling over windows of NCHW input (PyTorch's AvgPool2d).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(IntPair kernel_size, IntPair stride = -1 /* = kernel_size */);
  explicit AvgPool2d(const AvgPool2dOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;

  AvgPool2dOptions options;
};

/// Average pooling to a fixed output size [N, C, oh, ow] (PyTorch's bins).
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(IntPair output_size);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  IntPair output_size() const { return output_size_; }

 private:
  IntPair output_size_;
};

/// Returns its input unchanged (a placeholder, e.g. for a removed layer).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

/// Flattens dims start_dim.. into one: [N, C, H, W] → [N, C·H·W].
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1) : start_dim_(start_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  int64_t start_dim() const { return start_dim_; }

 private:
  int64_t start_dim_;
};

/// Inverted dropout in training mode (zero with probability p, scale the rest by
/// 1/(1-p)); the identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p() const { return p_; }

 private:
  double p_;
};

/// Formats a float hyper-parameter for extra_repr(): 0.01 → "0.01", 1 → "1.0".
std::string format_float(double v);

}  // namespace tape::nn
