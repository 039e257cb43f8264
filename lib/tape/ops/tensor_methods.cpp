// The method forms of the free functions in ops.hpp (t.sum(), t.matmul(w), ...).
// Declared with Tensor in core/tensor.hpp, defined here where the ops live.
#include "tape/ops/ops.hpp"

namespace tape {

Tensor Tensor::reshape(const Shape& s) const { return tape::reshape(*this, s); }
Tensor Tensor::flatten(int64_t start_dim) const { return tape::flatten(*this, start_dim); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return tape::transpose(*this, d0, d1); }
Tensor Tensor::t() const {
  TAPE_CHECK(dim() == 2, "t(): expects a 2-D tensor, got shape ", shape());
  return tape::transpose(*this, 0, 1);
}
Tensor Tensor::view(const Shape& s) const { return tape::view(*this, s); }
Tensor Tensor::select(int64_t d, int64_t i) const { return tape::select(*this, d, i); }
Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const { return tape::narrow(*this, d, start, length); }
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  return tape::slice(*this, d, start, end, step);
}
Tensor Tensor::squeeze(int64_t d) const { return tape::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return tape::unsqueeze(*this, d); }
Tensor Tensor::permute(const Shape& dims) const { return tape::permute(*this, dims); }
Tensor Tensor::expand(const Shape& sizes) const { return tape::expand(*this, sizes); }
std::vector<Tensor> Tensor::split(int64_t size, int64_t d) const { return tape::split(*this, size, d); }
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t d) const { return tape::chunk(*this, chunks, d); }
Tensor Tensor::sum() const { return tape::sum(*this); }
Tensor Tensor::sum(int64_t d, bool keepdim) const { return tape::sum(*this, d, keepdim); }
Tensor Tensor::mean() const { return tape::mean(*this); }
Tensor Tensor::mean(int64_t d, bool keepdim) const { return tape::mean(*this, d, keepdim); }
Tensor Tensor::max(int64_t d, bool keepdim) const { return tape::max(*this, d, keepdim); }
Tensor Tensor::argmax(int64_t d, bool keepdim) const { return tape::argmax(*this, d, keepdim); }
Tensor Tensor::min(int64_t d, bool keepdim) const { return tape::min(*this, d, keepdim); }
Tensor Tensor::argmin(int64_t d, bool keepdim) const { return tape::argmin(*this, d, keepdim); }
Tensor Tensor::prod() const { return tape::prod(*this); }
Tensor Tensor::var(int64_t d, bool unbiased, bool keepdim) const { return tape::var(*this, d, unbiased, keepdim); }
Tensor Tensor::std(int64_t d, bool unbiased, bool keepdim) const { return tape::std(*this, d, unbiased, keepdim); }
Tensor Tensor::logsumexp(int64_t d, bool keepdim) const { return tape::logsumexp(*this, d, keepdim); }
Tensor Tensor::norm(float p) const { return tape::norm(*this, p); }
Tensor Tensor::matmul(const Tensor& o) const { return tape::matmul(*this, o); }
Tensor Tensor::exp() const { return tape::exp(*this); }
Tensor Tensor::log() const { return tape::log(*this); }
Tensor Tensor::sqrt() const { return tape::sqrt(*this); }
Tensor Tensor::abs() const { return tape::abs(*this); }
Tensor Tensor::pow(double e) const { return tape::pow(*this, e); }
Tensor Tensor::log1p() const { return tape::log1p(*this); }
Tensor Tensor::expm1() const { return tape::expm1(*this); }
Tensor Tensor::sin() const { return tape::sin(*this); }
Tensor Tensor::cos() const { return tape::cos(*this); }
Tensor Tensor::rsqrt() const { return tape::rsqrt(*this); }
Tensor Tensor::square() const { return tape::square(*this); }
Tensor Tensor::sign() const { return tape::sign(*this); }
Tensor Tensor::clamp(double lo, double hi) const { return tape::clamp(*this, lo, hi); }
Tensor Tensor::maximum(const Tensor& o) const { return tape::maximum(*this, o); }
Tensor Tensor::minimum(const Tensor& o) const { return tape::minimum(*this, o); }
Tensor Tensor::relu() const { return tape::relu(*this); }
Tensor Tensor::tanh() const { return tape::tanh(*this); }
Tensor Tensor::sigmoid() const { return tape::sigmoid(*this); }
Tensor Tensor::softmax(int64_t d) const { return tape::softmax(*this, d); }
Tensor Tensor::log_softmax(int64_t d) const { return tape::log_softmax(*this, d); }
Tensor Tensor::operator-() const { return tape::neg(*this); }
Tensor Tensor::eq(const Tensor& o) const { return tape::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return tape::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return tape::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return tape::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return tape::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return tape::ge(*this, o); }
Tensor Tensor::eq(double s) const { return tape::eq(*this, s); }
Tensor Tensor::ne(double s) const { return tape::ne(*this, s); }
Tensor Tensor::lt(double s) const { return tape::lt(*this, s); }
Tensor Tensor::le(double s) const { return tape::le(*this, s); }
Tensor Tensor::gt(double s) const { return tape::gt(*this, s); }
Tensor Tensor::ge(double s) const { return tape::ge(*this, s); }
Tensor Tensor::logical_not() const { return tape::logical_not(*this); }
Tensor Tensor::isnan() const { return tape::isnan(*this); }
Tensor Tensor::isfinite() const { return tape::isfinite(*this); }
Tensor Tensor::masked_fill(const Tensor& mask, double v) const { return tape::masked_fill(*this, mask, v); }
Tensor Tensor::where(const Tensor& cond, const Tensor& other) const { return tape::where(cond, *this, other); }
Tensor Tensor::index_select(int64_t d, const Tensor& index) const { return tape::index_select(*this, d, index); }
Tensor Tensor::gather(int64_t d, const Tensor& index) const { return tape::gather(*this, d, index); }
Tensor Tensor::scatter_add(int64_t d, const Tensor& index, const Tensor& src) const {
  return tape::scatter_add(*this, d, index, src);
}

}  // namespace tape
