#include "tape/optim/sgd.hpp"

#include <cmath>

#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"
#include "tape/backend/parallel.hpp"

namespace tape::optim {

namespace {
/// One SGD update of n elements: d = g + wd·p; without a momentum buffer (bd null)
/// p −= lr·d; with one, b = d (first step) or mom·b + damp·d, p −= lr·(nesterov ? d + mom·b : b).
template <class T>
void sgd_update(T* pd, const T* gd, T* bd, int64_t n, T lr, T wd, T mom, T damp, bool nesterov, bool first) {
  if (!bd) {
    backend::parallel_ranges(n, [=](int64_t begin, int64_t end) {
      T* __restrict p_ = pd;
      const T* __restrict g_ = gd;
      for (int64_t j = begin; j < end; ++j) p_[j] -= lr * (g_[j] + wd * p_[j]);
    });
    return;
  }
  backend::parallel_ranges(n, [=](int64_t begin, int64_t end) {
    T* __restrict p_ = pd;
    T* __restrict b_ = bd;
    const T* __restrict g_ = gd;
    for (int64_t j = begin; j < end; ++j) {
      const T d = g_[j] + wd * p_[j];
      const T b = first ? d : mom * b_[j] + damp * d;
      b_[j] = b;
      p_[j] -= lr * (nesterov ? d + mom * b : b);
    }
  });
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay, bool nesterov)
    : SGD(std::move(params), SGDOptions(lr).momentum(momentum).weight_decay(weight_decay).nesterov(nesterov)) {}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(one_group(std::move(params)), options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer(std::move(groups), "SGD"), options_(options) {
  validate(options_);
  init_lr(options_.lr());
  momentum_slot_ = add_state_slot("momentum_buffer");
}

void SGD::validate(const SGDOptions& o) {
  check_lr(o.lr(), "SGD");
  TAPE_CHECK(std::isfinite(o.momentum()) && o.momentum() >= 0.0, "SGD: momentum must be >= 0, got ", o.momentum());
  TAPE_CHECK(std::isfinite(o.dampening()) && o.dampening() >= 0.0 && o.dampening() <= 1.0,
             "SGD: dampening must be in [0, 1], got ", o.dampening());
  TAPE_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0.0, "SGD: weight_decay must be >= 0, got ",
             o.weight_decay());
  TAPE_CHECK(!o.nesterov() || (o.momentum() > 0.0 && o.dampening() == 0.0),
             "SGD: nesterov needs momentum > 0 and dampening = 0, got momentum=", o.momentum(),
             ", dampening=", o.dampening());
}

std::map<std::string, double> SGD::hyper_parameters() const {
  return {{"momentum", options_.momentum()},
          {"dampening", options_.dampening()},
          {"weight_decay", options_.weight_decay()},
          {"nesterov", options_.nesterov() ? 1.0 : 0.0}};
}

void SGD::set_hyper_parameters(const std::map<std::string, double>& hp) {
  SGDOptions o = options_;
  o.momentum(hp.at("momentum")).dampening(hp.at("dampening")).weight_decay(hp.at("weight_decay"));
  const double nesterov = hp.at("nesterov");
  TAPE_CHECK(nesterov == 0.0 || nesterov == 1.0, "SGD: nesterov must be 0 or 1, got ", nesterov);
  o.nesterov(nesterov == 1.0);
  validate(o);
  options_ = o;
}

std::vector<std::string> SGD::state_names() const {
  if (options_.momentum() == 0.0) return {};
  return {"momentum_buffer"};
}

void SGD::step() {
  const bool nesterov = options_.nesterov(), use_mom = options_.momentum() != 0.0;
  for_each_grad(options_.weight_decay(), [&](size_t i, Tensor& p, const Tensor& g, double lr, double wd) {
    // one kernel, in the parameter's type (its state has that dtype too)
    tape::detail::visit_float(p.dtype(), "SGD.step", [&]<class T>() {
      Tensor holder;
      const T* gd = detail::grad_data<T>(p, g, holder, "SGD.step", i);
      ++param_steps_[i];
      Tensor* buf = use_mom ? &state_buffer(momentum_slot_, i) : nullptr;
      const bool first = buf && !buf->defined();
      if (first) *buf = Tensor::empty(p.shape(), p.dtype());
      sgd_update<T>(p.data<T>(), gd, buf ? buf->data<T>() : nullptr, p.numel(), T(lr), T(wd),
                    T(options_.momentum()), T(1) - T(options_.dampening()), nesterov, first);
      if (buf) buf->impl()->storage->bump_version();
    });
  });
}

}  // namespace tape::optim
