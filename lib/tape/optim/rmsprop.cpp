#include "tape/optim/rmsprop.hpp"

#include <cmath>

#include "tape/backend/parallel.hpp"
#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape::optim {

namespace {
template <class T>
struct RMSpropScalars {
  T lr, alpha, eps, wd, mom;
};

/// One RMSprop update of n elements (the rule above the class in rmsprop.hpp);
/// bd (momentum) and ad (centered) are null when unused.
template <class T>
void rmsprop_update(T* pd, T* vd, T* bd, T* ad, const T* gd, int64_t n, const RMSpropScalars<T> s) {
  backend::parallel_ranges(n, [=](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const T g = gd[j] + s.wd * pd[j];
      const T v = s.alpha * vd[j] + (T(1) - s.alpha) * g * g;
      vd[j] = v;
      T d;
      if (ad) {
        const T a = s.alpha * ad[j] + (T(1) - s.alpha) * g;
        ad[j] = a;
        d = std::sqrt(v - a * a) + s.eps;
      } else {
        d = std::sqrt(v) + s.eps;
      }
      if (bd) {
        const T b = s.mom * bd[j] + g / d;
        bd[j] = b;
        pd[j] -= s.lr * b;
      } else {
        pd[j] -= s.lr * g / d;
      }
    }
  });
}
}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
    : RMSprop(one_group(std::move(params)), options) {}

RMSprop::RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& options)
    : Optimizer(std::move(groups), "RMSprop"), options_(options) {
  validate(options_);
  init_lr(options_.lr());
  v_slot_ = add_state_slot("square_avg");
  b_slot_ = add_state_slot("momentum_buffer");
  a_slot_ = add_state_slot("grad_avg");
}

void RMSprop::validate(const RMSpropOptions& o) {
  check_lr(o.lr(), "RMSprop");
  TAPE_CHECK(std::isfinite(o.alpha()) && o.alpha() >= 0.0, "RMSprop: alpha must be >= 0, got ", o.alpha());
  TAPE_CHECK(std::isfinite(o.eps()) && o.eps() >= 0.0, "RMSprop: eps must be >= 0, got ", o.eps());
  TAPE_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0.0, "RMSprop: weight_decay must be >= 0, got ",
             o.weight_decay());
  TAPE_CHECK(std::isfinite(o.momentum()) && o.momentum() >= 0.0, "RMSprop: momentum must be >= 0, got ",
             o.momentum());
}

std::map<std::string, double> RMSprop::hyper_parameters() const {
  return {{"alpha", options_.alpha()},
          {"eps", options_.eps()},
          {"weight_decay", options_.weight_decay()},
          {"momentum", options_.momentum()},
          {"centered", options_.centered() ? 1.0 : 0.0}};
}

void RMSprop::set_hyper_parameters(const std::map<std::string, double>& hp) {
  RMSpropOptions o = options_;
  o.alpha(hp.at("alpha")).eps(hp.at("eps")).weight_decay(hp.at("weight_decay")).momentum(hp.at("momentum"));
  const double centered = hp.at("centered");
  TAPE_CHECK(centered == 0.0 || centered == 1.0, "RMSprop: centered must be 0 or 1, got ", centered);
  o.centered(centered == 1.0);
  validate(o);
  options_ = o;
}

std::vector<std::string> RMSprop::state_names() const {
  std::vector<std::string> names = {"square_avg"};
  if (options_.momentum() > 0.0) names.push_back("momentum_buffer");
  if (options_.centered()) names.push_back("grad_avg");
  return names;
}

void RMSprop::step() {
  const bool use_mom = options_.momentum() > 0.0, centered = options_.centered();
  for_each_grad(options_.weight_decay(), [&](size_t i, Tensor& p, const Tensor& g, double lr, double wd) {
    Tensor& v = state_buffer(v_slot_, i);
    Tensor* b = use_mom ? &state_buffer(b_slot_, i) : nullptr;
    Tensor* a = centered ? &state_buffer(a_slot_, i) : nullptr;
    tape::detail::visit_float(p.dtype(), "RMSprop.step", [&]<class T>() {
      Tensor holder;
      const T* gd = detail::grad_data<T>(p, g, holder, "RMSprop.step", i);
      for (Tensor* t : {&v, b, a})
        if (t && !t->defined()) *t = zeros(p.shape(), p.dtype());
      ++param_steps_[i];
      rmsprop_update<T>(p.data<T>(), v.data<T>(), b ? b->data<T>() : nullptr, a ? a->data<T>() : nullptr, gd,
                        p.numel(),
                        {T(lr), T(options_.alpha()), T(options_.eps()), T(wd),
                         T(options_.momentum())});
    });
    for (Tensor* t : {&v, b, a})
      if (t) t->impl()->storage->bump_version();
  });
}

}  // namespace tape::optim
