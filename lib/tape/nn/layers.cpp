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

namespace {

// Note: PyTorch's initialisation of Linear, Conv2d and ConvTranspose2d
// (reset_parameters in torch/nn/modules): weight kaiming_uniform_(w, a = √5), i.e.
// U(−1/√fan_in, 1/√fan_in) with fan_in from the weight's shape (for the
// transposed-convolution weight [in, out/g, kh, kw] that is out/g·kh·kw), and the
// bias from U(−1/√fan_in, 1/√fan_in) too — drawn weight first, then bias, so a
// seeded tape model starts from the same distribution a ported recipe expects.
// The report's He-normal is one call away: nn::init::kaiming_normal_(w).
void pytorch_default_init(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (!bias.defined()) return;
  const int64_t fan_in = init::fan_in_and_fan_out(weight.shape()).first;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
  init::uniform_(bias, -bound, bound);
}

}  // namespace

void Linear::reset_parameters() { pytorch_default_init(weight, bias); }

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

/// "3" for (3, 3), "(3, 5)" otherwise (messages).

/// The constructor checks shared by Conv2d and ConvTranspose2d (PyTorch's rules).
static void check_conv_options(const char* layer, int64_t in, int64_t out, IntPair k, IntPair stride, IntPair padding,
                               IntPair dilation, int64_t groups) {
  TAPE_CHECK(in > 0 && out > 0, layer, ": in_channels and out_channels must be > 0, got in_channels=", in,
             ", out_channels=", out);
  TAPE_CHECK(k.h > 0 && k.w > 0, layer, ": kernel_size must be > 0, got ", k.brief());
  TAPE_CHECK(stride.h > 0 && stride.w > 0, layer, ": stride must be > 0, got ", stride.brief());
  TAPE_CHECK(padding.h >= 0 && padding.w >= 0, layer, ": padding must be >= 0, got ", padding.brief());
  TAPE_CHECK(dilation.h > 0 && dilation.w > 0, layer, ": dilation must be > 0, got ", dilation.brief());
  TAPE_CHECK(groups > 0, layer, ": groups must be > 0, got ", groups);
  TAPE_CHECK(in % groups == 0, layer, ": in_channels must be divisible by groups, got in_channels=", in,
             ", groups=", groups);
  TAPE_CHECK(out % groups == 0, layer, ": out_channels must be divisible by groups, got out_channels=", out,
             ", groups=", groups);
}

/// PyTorch's _ConvNd.extra_repr: padding, dilation, output_padding and groups only
/// when not the default, "bias=False" when there is none.
static std::string conv_repr(int64_t in, int64_t out, IntPair k, IntPair stride, IntPair padding, IntPair dilation,
                             IntPair output_padding, int64_t groups, bool bias) {
  std::string s = str_cat(in, ", ", out, ", kernel_size=", k.str(), ", stride=", stride.str());
  if (padding != IntPair(0)) s += ", padding=" + padding.str();
  if (dilation != IntPair(1)) s += ", dilation=" + dilation.str();
  if (output_padding != IntPair(0)) s += ", output_padding=" + output_padding.str();
  if (groups != 1) s += str_cat(", groups=", groups);
  if (!bias) s += ", bias=False";
  return s;
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size, IntPair stride, IntPair padding,
               bool bias)
    : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size).stride(stride).padding(padding).bias(bias)) {}

Conv2d::Conv2d(const Conv2dOptions& o) : options(o) {
  check_conv_options("Conv2d", o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.padding(),
                     o.dilation(), o.groups());
  const IntPair k = o.kernel_size();
  weight = register_parameter("weight", Tensor::empty({o.out_channels(), o.in_channels() / o.groups(), k.h, k.w}));
  if (o.bias()) bias = register_parameter("bias", Tensor::empty({o.out_channels()}));
  reset_parameters();
}

void Conv2d::reset_parameters() { pytorch_default_init(weight, bias); }

Tensor Conv2d::forward(const Tensor& x) {
  const auto& o = options;
  const IntPair k = o.kernel_size(), p = o.padding(), d = o.dilation();
  TAPE_CHECK(x.dim() == 4 && x.size(1) == o.in_channels(), "Conv2d(", extra_repr(), "): expected input [N, ",
             o.in_channels(), ", H, W], got ", x.shape());
  TAPE_CHECK(x.size(2) + 2 * p.h >= d.h * (k.h - 1) + 1 && x.size(3) + 2 * p.w >= d.w * (k.w - 1) + 1, "Conv2d(",
             extra_repr(), "): input ", x.shape(), " with padding ", p.brief(), " is smaller than the kernel");
  return conv2d(x, weight, bias, o.stride(), p, d, o.groups());
}

std::string Conv2d::extra_repr() const {
  const auto& o = options;
  return conv_repr(o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.padding(), o.dilation(), 0,
                   o.groups(), o.bias());
}

// --- ConvTranspose2d ------------------------------------------------------------

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, IntPair kernel_size, IntPair stride,
                                 IntPair padding)
    : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size).stride(stride).padding(padding)) {}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& o) : options(o) {
  check_conv_options("ConvTranspose2d", o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.padding(),
                     o.dilation(), o.groups());
  const IntPair op = o.output_padding(), st = o.stride(), d = o.dilation();
  TAPE_CHECK(op.h >= 0 && op.w >= 0 && (op.h < st.h || op.h < d.h) && (op.w < st.w || op.w < d.w),
             "ConvTranspose2d: output_padding ", op.brief(), " must be >= 0 and smaller than either stride ",
             st.brief(), " or dilation ", d.brief());
  const IntPair k = o.kernel_size();
  weight = register_parameter("weight", Tensor::empty({o.in_channels(), o.out_channels() / o.groups(), k.h, k.w}));
  if (o.bias()) bias = register_parameter("bias", Tensor::empty({o.out_channels()}));
  reset_parameters();
}

void ConvTranspose2d::reset_parameters() { pytorch_default_init(weight, bias); }

Tensor ConvTranspose2d::forward(const Tensor& x) {
  const auto& o = options;
  TAPE_CHECK(x.dim() == 4 && x.size(1) == o.in_channels(), "ConvTranspose2d(", extra_repr(),
             "): expected input [N, ", o.in_channels(), ", H, W], got ", x.shape());
  return conv_transpose2d(x, weight, bias, o.stride(), o.padding(), o.output_padding(), o.groups(), o.dilation());
}

std::string ConvTranspose2d::extra_repr() const {
  const auto& o = options;
  return conv_repr(o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.padding(), o.dilation(),
                   o.output_padding(), o.groups(), o.bias());
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

// --- AvgPool2d ------------------------------------------------------------------

AvgPool2d::AvgPool2d(IntPair kernel_size, IntPair stride)
    : AvgPool2d(AvgPool2dOptions(kernel_size).stride(stride == IntPair(-1) ? kernel_size : stride)) {}

AvgPool2d::AvgPool2d(const AvgPool2dOptions& o) : options(o) {
  const IntPair k = o.kernel_size(), st = o.stride(), p = o.padding();
  TAPE_CHECK(k.h > 0 && k.w > 0, "AvgPool2d: kernel_size must be > 0, got ", k.brief());
  TAPE_CHECK(st.h > 0 && st.w > 0, "AvgPool2d: stride must be > 0, got ", st.brief());
  TAPE_CHECK(p.h >= 0 && p.w >= 0 && 2 * p.h <= k.h && 2 * p.w <= k.w,
             "AvgPool2d: padding must be >= 0 and at most half of kernel_size, got padding=", p.brief(),
             ", kernel_size=", k.brief());
}

Tensor AvgPool2d::forward(const Tensor& x) {
  const auto& o = options;
  TAPE_CHECK(x.dim() == 4, "AvgPool2d(", extra_repr(), "): expected input [N, C, H, W], got ", x.shape());
  return avg_pool2d(x, o.kernel_size(), o.stride(), o.padding(), o.ceil_mode(), o.count_include_pad());
}

// PyTorch: "kernel_size={}, stride={}, padding={}" with the values as given
std::string AvgPool2d::extra_repr() const {
  return str_cat("kernel_size=", options.kernel_size().brief(), ", stride=", options.stride().brief(),
                 ", padding=", options.padding().brief());
}

// --- AdaptiveAvgPool2d ----------------------------------------------------------

AdaptiveAvgPool2d::AdaptiveAvgPool2d(IntPair output_size) : output_size_(output_size) {
  TAPE_CHECK(output_size.h > 0 && output_size.w > 0, "AdaptiveAvgPool2d: output_size must be > 0, got ",
             output_size.brief());
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  TAPE_CHECK(x.dim() == 4, "AdaptiveAvgPool2d(", extra_repr(), "): expected input [N, C, H, W], got ", x.shape());
  return adaptive_avg_pool2d(x, output_size_);
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + output_size_.brief(); }

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
