#include "tape/backend/eltwise.hpp"

#include <bit>

#include "tape/backend/dnnl.hpp"

namespace tape::backend {

namespace {
dnnl::algorithm algorithm_of(Eltwise f) {
  switch (f) {
    case Eltwise::Tanh: return dnnl::algorithm::eltwise_tanh;
    case Eltwise::Logistic: return dnnl::algorithm::eltwise_logistic;
    case Eltwise::Elu: return dnnl::algorithm::eltwise_elu;
  }
  return dnnl::algorithm::eltwise_tanh;
}
}  // namespace

void eltwise_forward(Eltwise f, float alpha, const float* x, float* y, int64_t n) {
  // memory descriptors → primitive descriptor → primitive (cached per size) → execute
  const dnnl::memory::desc d({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  const int64_t alpha_bits = std::bit_cast<int32_t>(alpha);
  const auto prim = cached<dnnl::eltwise_forward>(Key{int64_t(OpId::Eltwise), int64_t(f), alpha_bits, n}, [&] {
    dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm_of(f), d, alpha, 0.f);
    return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(desc, attr(), engine()));
  });
  execute(*prim, {{DNNL_ARG_SRC, dnnl::memory(d, engine(), const_cast<float*>(x))},
                  {DNNL_ARG_DST, dnnl::memory(d, engine(), y)}});
}

}  // namespace tape::backend
