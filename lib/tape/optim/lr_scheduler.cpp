#include "tape/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace tape::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}
LRScheduler::~LRScheduler() = default;

void LRScheduler::init() { set_last_epoch(0); }

void LRScheduler::step() { set_last_epoch(last_epoch_ + 1); }

void LRScheduler::set_last_epoch(int64_t epoch) {
  TAPE_CHECK(epoch >= 0, type_name(), ".set_last_epoch: epoch must be >= 0, got ", epoch);
  last_epoch_ = epoch;
  const auto& groups = optimizer_.param_groups();
  last_lrs_.resize(groups.size());
  for (size_t k = 0; k < groups.size(); ++k) {
    last_lrs_[k] = lr_for(epoch, groups[k].initial_lr);
    optimizer_.set_lr(k, last_lrs_[k]);
  }
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  TAPE_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
  TAPE_CHECK(std::isfinite(gamma) && gamma >= 0.0, "StepLR: gamma must be >= 0, got ", gamma);
  init();
}

double StepLR::lr_for(int64_t epoch, double initial_lr) const {
  return initial_lr * std::pow(gamma_, double(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), t_max_(T_max), eta_min_(eta_min) {
  TAPE_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be > 0, got ", T_max);
  TAPE_CHECK(std::isfinite(eta_min) && eta_min >= 0.0, "CosineAnnealingLR: eta_min must be >= 0, got ", eta_min);
  init();
}

double CosineAnnealingLR::lr_for(int64_t epoch, double initial_lr) const {
  return eta_min_ + (initial_lr - eta_min_) * (1.0 + std::cos(std::numbers::pi * double(epoch) / double(t_max_))) / 2.0;
}

}  // namespace tape::optim

namespace tape::optim {

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer), start_(start_factor), end_(end_factor), total_iters_(total_iters) {
  TAPE_CHECK(start_factor > 0.0 && start_factor <= 1.0, "LinearLR: start_factor must be in (0, 1], got ",
             start_factor);
  TAPE_CHECK(end_factor >= 0.0 && end_factor <= 1.0, "LinearLR: end_factor must be in [0, 1], got ", end_factor);
  TAPE_CHECK(total_iters > 0, "LinearLR: total_iters must be > 0, got ", total_iters);
  init();
}

double LinearLR::lr_for(int64_t epoch, double initial_lr) const {
  const double t = double(std::min(epoch, total_iters_));
  return initial_lr * (start_ + (end_ - start_) * t / double(total_iters_));
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start,
                       AnnealStrategy anneal_strategy, double div_factor, double final_div_factor)
    : LRScheduler(optimizer),
      max_lr_(max_lr),
      initial_lr_(max_lr / div_factor),
      min_lr_(max_lr / div_factor / final_div_factor),
      total_steps_(total_steps),
      phase1_end_(pct_start * double(total_steps) - 1.0),
      strategy_(anneal_strategy) {
  TAPE_CHECK(std::isfinite(max_lr) && max_lr >= 0.0, "OneCycleLR: max_lr must be >= 0, got ", max_lr);
  TAPE_CHECK(total_steps > 0, "OneCycleLR: total_steps must be > 0, got ", total_steps);
  TAPE_CHECK(pct_start >= 0.0 && pct_start <= 1.0, "OneCycleLR: pct_start must be in [0, 1], got ", pct_start);
  TAPE_CHECK(std::isfinite(div_factor) && div_factor > 0.0, "OneCycleLR: div_factor must be > 0, got ", div_factor);
  TAPE_CHECK(std::isfinite(final_div_factor) && final_div_factor > 0.0,
             "OneCycleLR: final_div_factor must be > 0, got ", final_div_factor);
  optimizer.set_initial_lr(initial_lr_);
  init();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (strategy_ == AnnealStrategy::Cos) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
  return (end - start) * pct + start;
}

double OneCycleLR::lr_for(int64_t epoch, double /*initial_lr: every group follows max_lr*/) const {
  TAPE_CHECK(epoch <= total_steps_, "OneCycleLR: tried to step ", epoch, " times, the specified number of total steps is ",
             total_steps_);
  const double step = double(epoch);
  if (step <= phase1_end_) return anneal(initial_lr_, max_lr_, step / phase1_end_);
  const double end = double(total_steps_ - 1);
  return anneal(max_lr_, min_lr_, (step - phase1_end_) / (end - phase1_end_));
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, Mode mode, double factor, int64_t patience,
                                     double threshold, ThresholdMode threshold_mode, int64_t cooldown, double min_lr,
                                     double eps)
    : optimizer_(optimizer),
      mode_(mode),
      factor_(factor),
      patience_(patience),
      threshold_(threshold),
      threshold_mode_(threshold_mode),
      cooldown_(cooldown),
      min_lr_(min_lr),
      eps_(eps),
      best_(mode == Mode::Min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity()) {
  TAPE_CHECK(std::isfinite(factor) && factor >= 0.0 && factor < 1.0, "ReduceLROnPlateau: factor must be in [0, 1), got ",
             factor);
  TAPE_CHECK(patience >= 0, "ReduceLROnPlateau: patience must be >= 0, got ", patience);
  TAPE_CHECK(std::isfinite(threshold) && threshold >= 0.0, "ReduceLROnPlateau: threshold must be >= 0, got ",
             threshold);
  TAPE_CHECK(cooldown >= 0, "ReduceLROnPlateau: cooldown must be >= 0, got ", cooldown);
  TAPE_CHECK(std::isfinite(min_lr) && min_lr >= 0.0, "ReduceLROnPlateau: min_lr must be >= 0, got ", min_lr);
  TAPE_CHECK(std::isfinite(eps) && eps >= 0.0, "ReduceLROnPlateau: eps must be >= 0, got ", eps);
}

bool ReduceLROnPlateau::is_better(double a) const {
  const bool rel = threshold_mode_ == ThresholdMode::Rel;
  if (mode_ == Mode::Min) return a < (rel ? best_ * (1.0 - threshold_) : best_ - threshold_);
  return a > (rel ? best_ * (threshold_ + 1.0) : best_ + threshold_);
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // ignore bad epochs in cooldown
  }
  if (num_bad_epochs_ > patience_) {
    for (size_t k = 0; k < optimizer_.param_groups().size(); ++k) {
      const double old_lr = optimizer_.param_groups()[k].lr, new_lr = std::max(old_lr * factor_, min_lr_);
      if (old_lr - new_lr > eps_) optimizer_.set_lr(k, new_lr);
    }
    cooldown_counter_ = cooldown_;
    num_bad_epochs_ = 0;
  }
}

}  // namespace tape::optim
