#pragma once
/// \file Learning-rate schedulers (PyTorch's closed forms). Call step() once per epoch,
/// after that epoch's optimizer steps. The schedule scales optimizer.initial_lr().
#include <cstdint>
#include <string>

#include "tape/optim/optimizer.hpp"

namespace tape::optim {

class LRScheduler {
 public:
  /// Sets the optimizer's lr to the epoch-0 value (last_epoch() == 0).
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler();
  /// Advances one epoch and sets the optimizer's lr.
  void step();
  /// The lr this scheduler set last.
  double get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  /// Jumps to `epoch` (e.g. when resuming from a checkpoint) and sets the lr for it.
  void set_last_epoch(int64_t epoch);
  /// The lr of `epoch` under this schedule.
  virtual double lr_at(int64_t epoch) const = 0;
  virtual std::string type_name() const = 0;

 protected:
  /// Applies epoch 0; called by subclass constructors once their fields are set.
  void init();
  Optimizer& optimizer_;

 private:
  int64_t last_epoch_ = 0;
  double last_lr_ = 0.0;
};

/// lr = initial_lr · gamma^⌊epoch / step_size⌋
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;
  std::string type_name() const override { return "StepLR"; }

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = eta_min + (initial_lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  double lr_at(int64_t epoch) const override;
  std::string type_name() const override { return "CosineAnnealingLR"; }

 private:
  int64_t t_max_;
  double eta_min_;
};

}  // namespace tape::optim
