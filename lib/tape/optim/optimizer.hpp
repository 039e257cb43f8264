#pragma once
/// \file Optimizer: the base class of SGD, Adam and AdamW (LibTorch's torch::optim::Optimizer),
/// with named per-parameter state for checkpoints.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::optim {

/// Everything an optimizer needs to continue exactly: per-parameter tensors
/// ("param.3.exp_avg", "param.3.momentum_buffer") and scalars ("step", "lr",
/// "initial_lr", hyper-parameters, "param.3.step").
struct OptimizerState {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, double> scalars;
};

/// A parameter group (PyTorch's param_groups entry): its own lr and weight decay,
/// or the optimizer's when unset.
///
///   optim::SGD opt({{.params = body->parameters()}, {.params = head->parameters(), .lr = 0.1}},
///                  optim::SGDOptions(0.01).momentum(0.9));
struct ParamGroup {
  std::vector<Tensor> params = {};
  std::optional<double> lr = std::nullopt;             ///< unset: the optimizer's lr
  std::optional<double> weight_decay = std::nullopt;   ///< unset: the optimizer's weight decay
};

/// A group as the optimizer uses it: params()[begin, end), its current lr (what
/// schedulers change), the lr its schedule scales, and its weight decay.
struct ParamGroupSettings {
  size_t begin = 0, end = 0;
  double lr = 0.0;
  double initial_lr = 0.0;
  std::optional<double> weight_decay;  ///< unset: the optimizer's weight_decay
};

class Optimizer {
 public:
  /// `params` must be distinct, defined, contiguous Float32 or Float64 leaf tensors.
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient (others are skipped).
  /// Runs under NoGradGuard.
  virtual void step() = 0;
  /// Clears every parameter's gradient (sets it undefined).
  void zero_grad();

  /// The first group's learning rate (the only one without parameter groups).
  double lr() const { return groups_.front().lr; }
  /// Sets every group's learning rate; must be >= 0.
  void set_lr(double lr);
  /// Sets group `group`'s learning rate (what LR schedulers call, group by group).
  void set_lr(size_t group, double lr);
  /// The first group's initial learning rate (schedulers scale each group's own).
  double initial_lr() const { return groups_.front().initial_lr; }
  /// Sets every group's initial learning rate.
  void set_initial_lr(double lr);
  /// All parameters, group after group (the indices of "param.i" state entries).
  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<ParamGroupSettings>& param_groups() const { return groups_; }
  /// Number of step() calls so far.
  int64_t step_count() const { return step_count_; }

  virtual std::string type_name() const { return "Optimizer"; }

  /// A snapshot (tensors are copies) of the state, hyper-parameters and step counts.
  OptimizerState state_dict() const;
  /// Restores a state_dict() snapshot. Validates everything first (missing
  /// entries, unexpected entries, shapes, hyper-parameter ranges) and throws a
  /// one-line error naming the entry, leaving the optimizer unchanged.
  void load_state_dict(const OptimizerState& state);

 protected:
  /// For subclasses: `who` names the optimizer in error messages.
  Optimizer(std::vector<Tensor> params, const char* who);
  Optimizer(std::vector<ParamGroup> groups, const char* who);
  /// All of `params` as one group without settings of its own.
  static std::vector<ParamGroup> one_group(std::vector<Tensor> params);
  /// Sets each group's lr and initial_lr to its own lr, or `lr` when it has none
  /// (subclass constructors call it once their options are validated).
  void init_lr(double lr);

  /// Hyper-parameters besides lr, by name (saved in state_dict()).
  virtual std::map<std::string, double> hyper_parameters() const { return {}; }
  /// Validates and applies hyper-parameters (the keys of hyper_parameters()).
  virtual void set_hyper_parameters(const std::map<std::string, double>&) {}
  /// Per-parameter state buffers in use with the current hyper-parameters; each
  /// exists for every parameter that has been updated at least once.
  virtual std::vector<std::string> state_names() const { return {}; }

  /// Declares a per-parameter state slot ("exp_avg") in a constructor; returns its index.
  size_t add_state_slot(std::string name);
  /// Slot `slot` of parameter i: undefined until the subclass allocates it.
  Tensor& state_buffer(size_t slot, size_t i) { return slots_[slot][i]; }

  /// The frame of every step(): under NoGradGuard, counts the step, then calls
  /// update(i, p, g, lr, weight_decay) for each parameter p (index i) that has a
  /// gradient g, with its group's lr and weight decay (`default_weight_decay` for
  /// groups without one), and marks p as modified (its storage version) afterwards.
  using Update = std::function<void(size_t i, Tensor& p, const Tensor& g, double lr, double weight_decay)>;
  void for_each_grad(double default_weight_decay, const Update& update);

  /// Checks the learning rate; `who` prefixes the message.
  static void check_lr(double lr, const std::string& who);

  std::vector<Tensor> params_;
  std::vector<int64_t> param_steps_;  ///< updates applied to each parameter
  int64_t step_count_ = 0;

 private:
  std::vector<ParamGroupSettings> groups_;
  std::vector<std::optional<double>> group_lr_;  ///< the lr each ParamGroup asked for
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor>> slots_;  ///< [slot][param]
};

namespace detail {
/// Checks p and its gradient g (same shape and dtype, T = float or double) and returns
/// g's data, contiguous (`holder` keeps a contiguous copy alive when g was not).
template <class T>
const T* grad_data(const Tensor& p, const Tensor& g, Tensor& holder, const char* who, size_t index);
}  // namespace detail

}  // namespace tape::optim
