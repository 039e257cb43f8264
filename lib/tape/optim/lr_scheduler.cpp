#include "tape/optim/lr_scheduler.hpp"

#include <cmath>
#include <numbers>

namespace tape::optim {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}
LRScheduler::~LRScheduler() = default;

void LRScheduler::init() { set_last_epoch(0); }

void LRScheduler::step() { set_last_epoch(last_epoch_ + 1); }

void LRScheduler::set_last_epoch(int64_t epoch) {
  TAPE_CHECK(epoch >= 0, type_name(), ".set_last_epoch: epoch must be >= 0, got ", epoch);
  last_epoch_ = epoch;
  last_lr_ = lr_at(epoch);
  optimizer_.set_lr(last_lr_);
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  TAPE_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
  TAPE_CHECK(std::isfinite(gamma) && gamma >= 0.0, "StepLR: gamma must be >= 0, got ", gamma);
  init();
}

double StepLR::lr_at(int64_t epoch) const {
  return optimizer_.initial_lr() * std::pow(gamma_, double(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), t_max_(T_max), eta_min_(eta_min) {
  TAPE_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be > 0, got ", T_max);
  TAPE_CHECK(std::isfinite(eta_min) && eta_min >= 0.0, "CosineAnnealingLR: eta_min must be >= 0, got ", eta_min);
  init();
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  const double base = optimizer_.initial_lr();
  return eta_min_ + (base - eta_min_) * (1.0 + std::cos(std::numbers::pi * double(epoch) / double(t_max_))) / 2.0;
}

}  // namespace tape::optim
