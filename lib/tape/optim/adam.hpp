#pragma once
/// \file Adam (Kingma & Ba, with PyTorch's bias correction) and AdamW (decoupled weight decay).
#include <utility>

#include "tape/nn/options.hpp"
#include "tape/optim/optimizer.hpp"

namespace tape::optim {

/// (beta1, beta2)
using Betas = std::pair<double, double>;

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  TAPE_ARG(double, lr);
  TAPE_ARG(Betas, betas) = {0.9, 0.999};
  TAPE_ARG(double, eps) = 1e-8;
  TAPE_ARG(double, weight_decay) = 0.0;
};

struct AdamWOptions {
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  TAPE_ARG(double, lr);
  TAPE_ARG(Betas, betas) = {0.9, 0.999};
  TAPE_ARG(double, eps) = 1e-8;
  TAPE_ARG(double, weight_decay) = 1e-2;
};

/// t += 1;  g += wd·p (Adam) or p *= 1 − lr·wd (AdamW);
/// m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
/// p −= lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps).
/// State: "param.i.exp_avg" (m), "param.i.exp_avg_sq" (v), scalar "param.i.step" (t).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0.0);
  Adam(std::vector<Tensor> params, const AdamOptions& options);
  /// Parameter groups, each with its own lr / weight_decay or `options`'.
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);
  void step() override;
  std::string type_name() const override { return "Adam"; }

  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }

 protected:
  Adam(std::vector<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weight_decay,
       bool decoupled, const char* who);
  std::map<std::string, double> hyper_parameters() const override;
  void set_hyper_parameters(const std::map<std::string, double>& hp) override;
  std::vector<std::string> state_names() const override { return {"exp_avg", "exp_avg_sq"}; }

 private:
  void validate(double beta1, double beta2, double eps, double weight_decay) const;
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  const char* who_;
  size_t m_slot_, v_slot_;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 − lr·wd, then the
/// Adam step without L2 term. Default weight_decay = 0.01.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 1e-2);
  AdamW(std::vector<Tensor> params, const AdamWOptions& options);
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
  std::string type_name() const override { return "AdamW"; }
};

}  // namespace tape::optim
