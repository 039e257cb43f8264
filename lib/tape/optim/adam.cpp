#include "tape/optim/adam.hpp"

#include <cmath>

#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"
#include "tape/backend/parallel.hpp"

namespace tape::optim {

namespace {
/// The per-step constants of one Adam update, in the parameter's type.
template <class T>
struct AdamScalars {
  T b1, b2, eps;
  T l2;     ///< Adam's weight decay added to g (0 for AdamW)
  T decay;  ///< AdamW's 1 − lr·wd applied to p (1 for Adam)
  T step_size, bc2_sqrt;  ///< lr / (1 − β1ᵗ), sqrt(1 − β2ᵗ)
};

/// One Adam / AdamW update of n elements (the rule above the class in adam.hpp).
template <class T>
void adam_update(T* pd, T* md, T* vd, const T* gd, int64_t n, const AdamScalars<T> s) {
  backend::parallel_ranges(n, [=](int64_t begin, int64_t end) {
    T* __restrict p_ = pd;
    T* __restrict m_ = md;
    T* __restrict v_ = vd;
    const T* __restrict g_ = gd;
    const T b1 = s.b1, b2 = s.b2, eps = s.eps, l2 = s.l2, decay = s.decay, step_size = s.step_size,
            bc2_sqrt = s.bc2_sqrt;
    for (int64_t j = begin; j < end; ++j) {
      const T pj = p_[j] * decay;
      const T gj = g_[j] + l2 * pj;
      const T mj = b1 * m_[j] + (T(1) - b1) * gj;
      const T vj = b2 * v_[j] + (T(1) - b2) * gj * gj;
      m_[j] = mj;
      v_[j] = vj;
      p_[j] = pj - step_size * mj / (std::sqrt(vj) / bc2_sqrt + eps);
    }
  });
}
}  // namespace

Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam(one_group(std::move(params)), lr, beta1, beta2, eps, weight_decay, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o) : Adam(one_group(std::move(params)), o) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& o)
    : Adam(std::move(groups), o.lr(), o.betas().first, o.betas().second, o.eps(), o.weight_decay(), false, "Adam") {}

Adam::Adam(std::vector<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weight_decay,
           bool decoupled, const char* who)
    : Optimizer(std::move(groups), who),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled),
      who_(who) {
  check_lr(lr, who);
  validate(beta1, beta2, eps, weight_decay);
  init_lr(lr);
  m_slot_ = add_state_slot("exp_avg");
  v_slot_ = add_state_slot("exp_avg_sq");
}

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam(one_group(std::move(params)), lr, beta1, beta2, eps, weight_decay, true, "AdamW") {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o) : AdamW(one_group(std::move(params)), o) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Adam(std::move(groups), o.lr(), o.betas().first, o.betas().second, o.eps(), o.weight_decay(), true, "AdamW") {}

void Adam::validate(double beta1, double beta2, double eps, double weight_decay) const {
  TAPE_CHECK(beta1 >= 0.0 && beta1 < 1.0, who_, ": beta1 must be in [0, 1), got ", beta1);
  TAPE_CHECK(beta2 >= 0.0 && beta2 < 1.0, who_, ": beta2 must be in [0, 1), got ", beta2);
  TAPE_CHECK(std::isfinite(eps) && eps >= 0.0, who_, ": eps must be >= 0, got ", eps);
  TAPE_CHECK(std::isfinite(weight_decay) && weight_decay >= 0.0, who_, ": weight_decay must be >= 0, got ",
             weight_decay);
}

std::map<std::string, double> Adam::hyper_parameters() const {
  return {{"beta1", beta1_}, {"beta2", beta2_}, {"eps", eps_}, {"weight_decay", weight_decay_}};
}

void Adam::set_hyper_parameters(const std::map<std::string, double>& hp) {
  const double b1 = hp.at("beta1"), b2 = hp.at("beta2"), eps = hp.at("eps"), wd = hp.at("weight_decay");
  validate(b1, b2, eps, wd);
  beta1_ = b1, beta2_ = b2, eps_ = eps, weight_decay_ = wd;
}

void Adam::step() {
  for_each_grad(weight_decay_, [&](size_t i, Tensor& p, const Tensor& g, double lr, double wd) {
    Tensor& m = state_buffer(m_slot_, i);
    Tensor& v = state_buffer(v_slot_, i);
    // one kernel, in the parameter's type (its state has that dtype too)
    tape::detail::visit_float(p.dtype(), who_, [&]<class T>() {
      Tensor holder;
      const T* gd = detail::grad_data<T>(p, g, holder, who_, i);
      if (!m.defined()) m = zeros(p.shape(), p.dtype());
      if (!v.defined()) v = zeros(p.shape(), p.dtype());
      const int64_t t = ++param_steps_[i];
      // Scalars in double, as PyTorch computes them on the host.
      const double bc1 = 1.0 - std::pow(beta1_, double(t)), bc2 = 1.0 - std::pow(beta2_, double(t));
      adam_update<T>(p.data<T>(), m.data<T>(), v.data<T>(), gd, p.numel(),
                     {T(beta1_), T(beta2_), T(eps_), decoupled_ ? T(0) : T(wd), decoupled_ ? T(1.0 - lr * wd) : T(1),
                      T(lr / bc1), T(std::sqrt(bc2))});
    });
    m.impl()->storage->bump_version();
    v.impl()->storage->bump_version();
  });
}

}  // namespace tape::optim
