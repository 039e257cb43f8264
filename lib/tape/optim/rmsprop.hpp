#pragma once
/// \file RMSprop (Hinton) with PyTorch 1.13's options and defaults.
#include "tape/nn/options.hpp"
#include "tape/optim/optimizer.hpp"

namespace tape::optim {

/// Defaults match torch.optim.RMSprop.
struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  TAPE_ARG(double, lr);
  TAPE_ARG(double, alpha) = 0.99;
  TAPE_ARG(double, eps) = 1e-8;
  TAPE_ARG(double, weight_decay) = 0.0;
  TAPE_ARG(double, momentum) = 0.0;
  TAPE_ARG(bool, centered) = false;
};

/// g += wd·p;  v = α·v + (1−α)·g²;  centered: a = α·a + (1−α)·g, d = sqrt(v − a²) + eps,
/// else d = sqrt(v) + eps;  momentum > 0: b = μ·b + g/d, p −= lr·b;  else p −= lr·g/d.
/// State: "param.i.square_avg" (v), "param.i.momentum_buffer" (b, momentum > 0),
/// "param.i.grad_avg" (a, centered).
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = RMSpropOptions());
  /// RMSprop(params, lr): the other options at their defaults.
  RMSprop(std::vector<Tensor> params, double lr) : RMSprop(std::move(params), RMSpropOptions(lr)) {}
  /// Parameter groups, each with its own lr / weight_decay or `options`'.
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& options);
  void step() override;
  std::string type_name() const override { return "RMSprop"; }
  const RMSpropOptions& options() const { return options_; }

 protected:
  std::map<std::string, double> hyper_parameters() const override;
  void set_hyper_parameters(const std::map<std::string, double>& hp) override;
  std::vector<std::string> state_names() const override;

 private:
  static void validate(const RMSpropOptions& o);
  RMSpropOptions options_;
  size_t v_slot_, b_slot_, a_slot_;
};

}  // namespace tape::optim
