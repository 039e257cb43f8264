#include "tape/nn/layers.hpp"

#include <cmath>
#include <sstream>

#include "tape/nn/init.hpp"
#include "tape/ops/ops.hpp"

namespace tape::nn {

std::string format_float(double v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  if (std::isfinite(v) && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

static const char* bool_str(bool b) { return b ? "true" : "false"; }

// --- Linear ---------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : Linear(LinearOptions(in_features, out_features).bias(bias)) {}

Linear::Linear(const LinearOptions& o) : options(o) {
  TAPE_CHECK(o.in_features() > 0 && o.out_features() > 0,
             "Linear: in_features and out_features must be > 0, got in_features=", o.in_features(),
             ", out_features=", o.out_features());
  weight = register_parameter("weight", Tensor::empty({o.out_features(), o.in_features()}));
  if (o.bias()) bias = register_parameter("bias", Tensor::empty({o.out_features()}));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_normal_(weight, options.in_features());
  if (bias.defined()) init::zeros_(bias);
}

Tensor Linear::forward(const Tensor& x) {
  const int64_t in = options.in_features();
  TAPE_CHECK(x.dim() >= 1 && x.size(-1) == in, "Linear(in_features=", in, ", out_features=",
             options.out_features(), "): expected input [..., ", in, "], got ", x.shape());
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return str_cat("in_features=", options.in_features(), ", out_features=", options.out_features(),
             ", bias=", bool_str(options.bias()));
}

// --- Conv2d ---------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride, int64_t padding,
               bool bias)
    : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size).stride(stride).padding(padding).bias(bias)) {}

Conv2d::Conv2d(const Conv2dOptions& o) : options(o) {
  TAPE_CHECK(o.in_channels() > 0 && o.out_channels() > 0,
             "Conv2d: in_channels and out_channels must be > 0, got in_channels=", o.in_channels(),
             ", out_channels=", o.out_channels());
  TAPE_CHECK(o.kernel_size() > 0, "Conv2d: kernel_size must be > 0, got ", o.kernel_size());
  TAPE_CHECK(o.stride() > 0, "Conv2d: stride must be > 0, got ", o.stride());
  TAPE_CHECK(o.padding() >= 0, "Conv2d: padding must be >= 0, got ", o.padding());
  const int64_t k = o.kernel_size();
  weight = register_parameter("weight", Tensor::empty({o.out_channels(), o.in_channels(), k, k}));
  if (o.bias()) bias = register_parameter("bias", Tensor::empty({o.out_channels()}));
  reset_parameters();
}

void Conv2d::reset_parameters() {
  const int64_t k = options.kernel_size();
  init::kaiming_normal_(weight, options.in_channels() * k * k);
  if (bias.defined()) init::zeros_(bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  const auto& o = options;
  const int64_t k = o.kernel_size(), p = o.padding();
  TAPE_CHECK(x.dim() == 4 && x.size(1) == o.in_channels(), "Conv2d(in_channels=", o.in_channels(),
             ", out_channels=", o.out_channels(), ", kernel_size=", k, "): expected input [N, ", o.in_channels(),
             ", H, W], got ", x.shape());
  TAPE_CHECK(x.size(2) + 2 * p >= k && x.size(3) + 2 * p >= k, "Conv2d(in_channels=", o.in_channels(),
             ", out_channels=", o.out_channels(), ", kernel_size=", k, "): input ", x.shape(), " with padding ", p,
             " is smaller than the kernel");
  return conv2d(x, weight, bias, o.stride(), p);
}

std::string Conv2d::extra_repr() const {
  const auto& o = options;
  return str_cat("in_channels=", o.in_channels(), ", out_channels=", o.out_channels(), ", kernel_size=", o.kernel_size(),
             ", stride=", o.stride(), ", padding=", o.padding(), ", bias=", bool_str(o.bias()));
}

// --- MaxPool2d ------------------------------------------------------------------

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride) : MaxPool2d(MaxPool2dOptions(kernel_size).stride(stride)) {}

MaxPool2d::MaxPool2d(const MaxPool2dOptions& o) : options(o) {
  TAPE_CHECK(o.kernel_size() > 0, "MaxPool2d: kernel_size must be > 0, got ", o.kernel_size());
  TAPE_CHECK(o.stride() > 0 || o.stride() == -1, "MaxPool2d: stride must be > 0 (or -1 for kernel_size), got ",
             o.stride());
  if (options.stride() == -1) options.stride(options.kernel_size());
}

Tensor MaxPool2d::forward(const Tensor& x) {
  const int64_t k = options.kernel_size();
  TAPE_CHECK(x.dim() == 4 && x.size(2) >= k && x.size(3) >= k, "MaxPool2d(kernel_size=", k,
             ", stride=", options.stride(), "): expected input [N, C, H, W] with H, W >= ", k, ", got ", x.shape());
  return max_pool2d(x, k, options.stride());
}

std::string MaxPool2d::extra_repr() const {
  return str_cat("kernel_size=", options.kernel_size(), ", stride=", options.stride());
}

// --- Flatten --------------------------------------------------------------------

Tensor Flatten::forward(const Tensor& x) {
  TAPE_CHECK(start_dim_ >= -x.dim() && start_dim_ < x.dim(), "Flatten(start_dim=", start_dim_, "): input of shape ",
             x.shape(), " has no dim ", start_dim_);
  return flatten(x, start_dim_);
}

std::string Flatten::extra_repr() const { return str_cat("start_dim=", start_dim_); }

// --- Dropout --------------------------------------------------------------------

Dropout::Dropout(double p) : p_(p) {
  TAPE_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, float(p_), is_training()); }

std::string Dropout::extra_repr() const { return "p=" + format_float(p_); }

}  // namespace tape::nn
