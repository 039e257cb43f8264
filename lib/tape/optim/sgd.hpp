#pragma once
/// \file SGD with momentum, dampening, Nesterov momentum and L2 weight decay (PyTorch's formulas).
#include "tape/nn/options.hpp"
#include "tape/optim/optimizer.hpp"

namespace tape::optim {

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  TAPE_ARG(double, lr);
  TAPE_ARG(double, momentum) = 0.0;
  TAPE_ARG(double, dampening) = 0.0;
  TAPE_ARG(double, weight_decay) = 0.0;
  TAPE_ARG(bool, nesterov) = false;
};

/// g += wd·p;  buf = momentum·buf + (1−dampening)·g (first step: buf = g);
/// g = nesterov ? g + momentum·buf : buf;  p −= lr·g.
/// State: "param.i.momentum_buffer" (when momentum > 0).
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false);
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  /// Parameter groups, each with its own lr / weight_decay or `options`'.
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  void step() override;
  std::string type_name() const override { return "SGD"; }
  /// The hyper-parameters (options().lr() is the initial lr; see lr() for the current one).
  const SGDOptions& options() const { return options_; }

 protected:
  std::map<std::string, double> hyper_parameters() const override;
  void set_hyper_parameters(const std::map<std::string, double>& hp) override;
  std::vector<std::string> state_names() const override;

 private:
  static void validate(const SGDOptions& o);
  SGDOptions options_;
  size_t momentum_slot_;
};

}  // namespace tape::optim
