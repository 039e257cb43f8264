#include "tape/optim/adagrad.hpp"

#include <cmath>

#include "tape/backend/parallel.hpp"
#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"

namespace tape::optim {

namespace {
/// One Adagrad update of n elements (the rule above the class in adagrad.hpp).
template <class T>
void adagrad_update(T* pd, T* sd, const T* gd, int64_t n, T clr, T wd, T eps) {
  backend::parallel_ranges(n, [=](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const T g = gd[j] + wd * pd[j];
      const T s = sd[j] + g * g;
      sd[j] = s;
      pd[j] -= clr * g / (std::sqrt(s) + eps);
    }
  });
}
}  // namespace

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& options)
    : Adagrad(one_group(std::move(params)), options) {}

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& options)
    : Optimizer(std::move(groups), "Adagrad"), options_(options) {
  validate(options_);
  init_lr(options_.lr());
  sum_slot_ = add_state_slot("sum");
}

void Adagrad::validate(const AdagradOptions& o) {
  check_lr(o.lr(), "Adagrad");
  TAPE_CHECK(std::isfinite(o.lr_decay()) && o.lr_decay() >= 0.0, "Adagrad: lr_decay must be >= 0, got ",
             o.lr_decay());
  TAPE_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0.0, "Adagrad: weight_decay must be >= 0, got ",
             o.weight_decay());
  TAPE_CHECK(std::isfinite(o.initial_accumulator_value()) && o.initial_accumulator_value() >= 0.0,
             "Adagrad: initial_accumulator_value must be >= 0, got ", o.initial_accumulator_value());
  TAPE_CHECK(std::isfinite(o.eps()) && o.eps() >= 0.0, "Adagrad: eps must be >= 0, got ", o.eps());
}

std::map<std::string, double> Adagrad::hyper_parameters() const {
  return {{"lr_decay", options_.lr_decay()},
          {"weight_decay", options_.weight_decay()},
          {"initial_accumulator_value", options_.initial_accumulator_value()},
          {"eps", options_.eps()}};
}

void Adagrad::set_hyper_parameters(const std::map<std::string, double>& hp) {
  AdagradOptions o = options_;
  o.lr_decay(hp.at("lr_decay"))
      .weight_decay(hp.at("weight_decay"))
      .initial_accumulator_value(hp.at("initial_accumulator_value"))
      .eps(hp.at("eps"));
  validate(o);
  options_ = o;
}

void Adagrad::step() {
  for_each_grad(options_.weight_decay(), [&](size_t i, Tensor& p, const Tensor& g, double lr, double wd) {
    Tensor& s = state_buffer(sum_slot_, i);
    tape::detail::visit_float(p.dtype(), "Adagrad.step", [&]<class T>() {
      Tensor holder;
      const T* gd = detail::grad_data<T>(p, g, holder, "Adagrad.step", i);
      if (!s.defined()) s = full(p.shape(), options_.initial_accumulator_value(), p.dtype());
      const int64_t t = ++param_steps_[i];
      // the decayed lr in double, as PyTorch computes it on the host
      const double clr = lr / (1.0 + double(t - 1) * options_.lr_decay());
      adagrad_update<T>(p.data<T>(), s.data<T>(), gd, p.numel(), T(clr), T(wd),
                        T(options_.eps()));
    });
    s.impl()->storage->bump_version();
  });
}

}  // namespace tape::optim
