#pragma once
/// \file Learning-rate schedulers (PyTorch's closed forms). Call step() once per epoch,
/// after that epoch's optimizer steps. The schedule scales each parameter group's
/// initial_lr (optimizer.param_groups()), group by group, as PyTorch's do.
#include <cstdint>
#include <string>
#include <vector>

#include "tape/optim/optimizer.hpp"

namespace tape::optim {

class LRScheduler {
 public:
  /// Sets the optimizer's lr to the epoch-0 value (last_epoch() == 0).
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler();
  /// Advances one epoch and sets every group's lr.
  void step();
  /// The lr this scheduler set last (the first group's).
  double get_last_lr() const { return last_lrs_.front(); }
  /// The lr of every group, set last.
  const std::vector<double>& get_last_lrs() const { return last_lrs_; }
  int64_t last_epoch() const { return last_epoch_; }
  /// Jumps to `epoch` (e.g. when resuming from a checkpoint) and sets the lrs for it.
  void set_last_epoch(int64_t epoch);
  /// The lr of `epoch` for the first group.
  double lr_at(int64_t epoch) const { return lr_for(epoch, optimizer_.initial_lr()); }
  /// The lr of `epoch` for a group whose initial lr is `initial_lr`.
  virtual double lr_for(int64_t epoch, double initial_lr) const = 0;
  virtual std::string type_name() const = 0;

 protected:
  /// Applies epoch 0; called by subclass constructors once their fields are set.
  void init();
  Optimizer& optimizer_;

 private:
  int64_t last_epoch_ = 0;
  std::vector<double> last_lrs_{0.0};
};

/// lr = initial_lr · gamma^⌊epoch / step_size⌋
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_for(int64_t epoch, double initial_lr) const override;
  std::string type_name() const override { return "StepLR"; }

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = eta_min + (initial_lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  double lr_for(int64_t epoch, double initial_lr) const override;
  std::string type_name() const override { return "CosineAnnealingLR"; }

 private:
  int64_t t_max_;
  double eta_min_;
};

}  // namespace tape::optim

namespace tape::optim {

/// Linear warm-up (or decay) of the factor from start_factor to end_factor over
/// total_iters epochs, then constant:
/// lr = initial_lr · (start + (end − start) · min(epoch, total_iters) / total_iters).
/// Defaults match torch.optim.lr_scheduler.LinearLR.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3.0, double end_factor = 1.0, int64_t total_iters = 5);
  double lr_for(int64_t epoch, double initial_lr) const override;
  std::string type_name() const override { return "LinearLR"; }

 private:
  double start_, end_;
  int64_t total_iters_;
};

enum class AnnealStrategy { Cos, Linear };

/// The 1cycle policy (Smith & Topin), two phases as PyTorch's default (three_phase = false):
/// from max_lr/div_factor up to max_lr over pct_start·total_steps − 1 steps, then down to
/// max_lr/(div_factor·final_div_factor) at step total_steps − 1. Call step() after every
/// batch; at most total_steps steps. Sets every group's initial_lr to max_lr/div_factor
/// (one max_lr for all groups). Momentum cycling is not implemented. Defaults match
/// torch.optim.lr_scheduler.OneCycleLR.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start = 0.3,
             AnnealStrategy anneal_strategy = AnnealStrategy::Cos, double div_factor = 25.0,
             double final_div_factor = 1e4);
  double lr_for(int64_t epoch, double initial_lr) const override;
  std::string type_name() const override { return "OneCycleLR"; }

 private:
  double anneal(double start, double end, double pct) const;
  double max_lr_, initial_lr_, min_lr_;
  int64_t total_steps_;
  double phase1_end_;  ///< pct_start·total_steps − 1
  AnnealStrategy strategy_;
};

/// Multiplies every group's lr by `factor` (not below min_lr) when a metric stopped
/// improving for more than `patience` epochs (then waits `cooldown` epochs). Not an LRScheduler: step(metric) depends on
/// the metric history. Defaults match torch.optim.lr_scheduler.ReduceLROnPlateau.
class ReduceLROnPlateau {
 public:
  enum class Mode { Min, Max };
  enum class ThresholdMode { Rel, Abs };
  explicit ReduceLROnPlateau(Optimizer& optimizer, Mode mode = Mode::Min, double factor = 0.1, int64_t patience = 10,
                             double threshold = 1e-4, ThresholdMode threshold_mode = ThresholdMode::Rel,
                             int64_t cooldown = 0, double min_lr = 0.0, double eps = 1e-8);
  /// One epoch with this metric value (e.g. validation loss); may lower the lr.
  void step(double metric);
  double get_last_lr() const { return optimizer_.lr(); }
  int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }

 private:
  bool is_better(double a) const;
  Optimizer& optimizer_;
  Mode mode_;
  double factor_;
  int64_t patience_;
  double threshold_;
  ThresholdMode threshold_mode_;
  int64_t cooldown_;
  double min_lr_, eps_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
};

}  // namespace tape::optim
