#pragma once
/// \file Adagrad (Duchi et al.) with PyTorch 1.13's options and defaults.
#include "tape/nn/options.hpp"
#include "tape/optim/optimizer.hpp"

namespace tape::optim {

/// Defaults match torch.optim.Adagrad.
struct AdagradOptions {
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  TAPE_ARG(double, lr);
  TAPE_ARG(double, lr_decay) = 0.0;
  TAPE_ARG(double, weight_decay) = 0.0;
  TAPE_ARG(double, initial_accumulator_value) = 0.0;
  TAPE_ARG(double, eps) = 1e-10;
};

/// t += 1;  g += wd·p;  clr = lr / (1 + (t−1)·lr_decay);  s += g²;  p −= clr·g / (sqrt(s) + eps).
/// s starts at initial_accumulator_value. State: "param.i.sum" (s), scalar "param.i.step" (t).
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(std::vector<Tensor> params, const AdagradOptions& options = AdagradOptions());
  /// Adagrad(params, lr): the other options at their defaults.
  Adagrad(std::vector<Tensor> params, double lr) : Adagrad(std::move(params), AdagradOptions(lr)) {}
  /// Parameter groups, each with its own lr / weight_decay or `options`'.
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& options);
  void step() override;
  std::string type_name() const override { return "Adagrad"; }
  const AdagradOptions& options() const { return options_; }

 protected:
  std::map<std::string, double> hyper_parameters() const override;
  void set_hyper_parameters(const std::map<std::string, double>& hp) override;
  std::vector<std::string> state_names() const override { return {"sum"}; }

 private:
  static void validate(const AdagradOptions& o);
  AdagradOptions options_;
  size_t sum_slot_;
};

}  // namespace tape::optim
