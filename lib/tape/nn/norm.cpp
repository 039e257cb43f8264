#include "tape/nn/norm.hpp"

#include "tape/core/grad_mode.hpp"
#include "tape/nn/layers.hpp"
#include "tape/ops/norm.hpp"

namespace tape::nn {

namespace {
const char* py_bool(bool b) { return b ? "True" : "False"; }  // extra_repr spells options as PyTorch prints them

/// "(4, 5)" / "(4,)": a shape as a Python tuple.
std::string tuple_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}
}  // namespace

// --- BatchNorm1d / BatchNorm2d ------------------------------------------------------

BatchNormBase::BatchNormBase(const BatchNormOptions& o) : options(o) {
  TAPE_CHECK(o.num_features() > 0, "BatchNorm: num_features must be > 0, got ", o.num_features());
  TAPE_CHECK(o.eps() >= 0, "BatchNorm: eps must be >= 0, got ", o.eps());
  const int64_t c = o.num_features();
  if (o.affine()) {
    weight = register_parameter("weight", Tensor::empty({c}));
    bias = register_parameter("bias", Tensor::empty({c}));
  }
  if (o.track_running_stats()) {
    running_mean = register_buffer("running_mean", Tensor::empty({c}));
    running_var = register_buffer("running_var", Tensor::empty({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", scalar_tensor(0, Dtype::Int64));
  }
  reset_parameters();
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats()) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor BatchNormBase::forward(const Tensor& x) {
  TAPE_CHECK(x.defined(), type_name(), ": input is an undefined tensor");
  check_input(x);
  // PyTorch: batch statistics in training mode, or always without running ones
  const bool use_batch_stats = is_training() || !options.track_running_stats();
  if (is_training() && options.track_running_stats()) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1.0);
  }
  return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, options.momentum(), options.eps());
}

std::string BatchNormBase::extra_repr() const {
  const auto& o = options;
  return str_cat(o.num_features(), ", eps=", format_float(o.eps()), ", momentum=", format_float(o.momentum()),
                 ", affine=", py_bool(o.affine()), ", track_running_stats=", py_bool(o.track_running_stats()));
}

void BatchNorm1d::check_input(const Tensor& x) const {
  const int64_t c = options.num_features();
  TAPE_CHECK((x.dim() == 2 || x.dim() == 3) && x.size(1) == c, "BatchNorm1d: expected input [N, ", c, "] or [N, ", c,
             ", L], got ", x.shape());
}

void BatchNorm2d::check_input(const Tensor& x) const {
  const int64_t c = options.num_features();
  TAPE_CHECK(x.dim() == 4 && x.size(1) == c, "BatchNorm2d: expected input [N, ", c, ", H, W], got ", x.shape());
}

// --- LayerNorm -------------------------------------------------------------------------

LayerNorm::LayerNorm(const LayerNormOptions& o) : options(o) {
  const Shape& s = o.normalized_shape();
  bool positive = !s.empty();
  for (int64_t d : s) positive = positive && d > 0;
  TAPE_CHECK(positive, "LayerNorm: normalized_shape must be non-empty with sizes > 0, got ", s);
  if (o.elementwise_affine()) {
    weight = register_parameter("weight", Tensor::empty(s));
    bias = register_parameter("bias", Tensor::empty(s));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (!options.elementwise_affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor LayerNorm::forward(const Tensor& x) {
  const Shape& s = options.normalized_shape();
  const int64_t k = int64_t(s.size());
  bool ok = x.defined() && x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == s[size_t(i)];
  TAPE_CHECK(ok, "LayerNorm: expected input [*, ", shape_str(s).substr(1), ", got ",
             x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  return layer_norm(x, s, weight, bias, options.eps());
}

std::string LayerNorm::extra_repr() const {
  return str_cat(tuple_str(options.normalized_shape()), ", eps=", format_float(options.eps()),
                 ", elementwise_affine=", py_bool(options.elementwise_affine()));
}

// --- GroupNorm -------------------------------------------------------------------------

GroupNorm::GroupNorm(const GroupNormOptions& o) : options(o) {
  TAPE_CHECK(o.num_groups() > 0 && o.num_channels() > 0 && o.num_channels() % o.num_groups() == 0,
             "GroupNorm: num_channels must be divisible by num_groups (both > 0), got num_groups=", o.num_groups(),
             ", num_channels=", o.num_channels());
  if (o.affine()) {
    weight = register_parameter("weight", Tensor::empty({o.num_channels()}));
    bias = register_parameter("bias", Tensor::empty({o.num_channels()}));
  }
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor GroupNorm::forward(const Tensor& x) {
  const int64_t c = options.num_channels();
  TAPE_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == c, "GroupNorm: expected input [N, ", c, ", *], got ",
             x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  return group_norm(x, options.num_groups(), weight, bias, options.eps());
}

std::string GroupNorm::extra_repr() const {
  return str_cat(options.num_groups(), ", ", options.num_channels(), ", eps=", format_float(options.eps()),
                 ", affine=", py_bool(options.affine()));
}

}  // namespace tape::nn
