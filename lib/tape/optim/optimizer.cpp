#include "tape/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "tape/core/grad_mode.hpp"

namespace tape::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : Optimizer(std::move(params), "Optimizer") {}

Optimizer::Optimizer(std::vector<Tensor> params, const char* who)
    : Optimizer(one_group(std::move(params)), who) {}

Optimizer::Optimizer(std::vector<ParamGroup> groups, const char* who) {
  TAPE_CHECK(!groups.empty(), who, ": got no parameter groups");
  TAPE_CHECK(groups.size() > 1 || !groups[0].params.empty(), who, ": got an empty parameter list");
  for (size_t k = 0; k < groups.size(); ++k) {
    ParamGroup& group = groups[k];
    TAPE_CHECK(!group.params.empty(), who, ": parameter group ", k, " is empty");
    if (group.lr) check_lr(*group.lr, str_cat(who, ": parameter group ", k));
    if (group.weight_decay)
      TAPE_CHECK(std::isfinite(*group.weight_decay) && *group.weight_decay >= 0.0, who, ": parameter group ", k,
                 ": weight_decay must be >= 0, got ", *group.weight_decay);
    ParamGroupSettings settings;
    settings.begin = params_.size();
    settings.weight_decay = group.weight_decay;
    for (Tensor& p : group.params) params_.push_back(std::move(p));
    settings.end = params_.size();
    groups_.push_back(settings);
    group_lr_.push_back(group.lr);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    TAPE_CHECK(p.defined(), who, ": parameter ", i, " is an undefined tensor");
    TAPE_CHECK(p.dtype() == Dtype::Float32 || p.dtype() == Dtype::Float64, who, ": parameter ", i,
               " must be Float32 or Float64, got ", dtype_name(p.dtype()));
    TAPE_CHECK(p.is_leaf(), who, ": parameter ", i, " of shape ", p.shape(), " is not a leaf tensor");
    TAPE_CHECK(p.is_contiguous(), who, ": parameter ", i, " of shape ", p.shape(), " is not contiguous");
    for (size_t j = 0; j < i; ++j)
      TAPE_CHECK(!params_[j].is_same(p), who, ": parameter ", i, " is the same tensor as parameter ", j);
  }
  param_steps_.assign(params_.size(), 0);
}

Optimizer::~Optimizer() = default;

std::vector<ParamGroup> Optimizer::one_group(std::vector<Tensor> params) {
  return {ParamGroup{std::move(params), {}, {}}};
}

void Optimizer::init_lr(double lr) {
  for (size_t k = 0; k < groups_.size(); ++k) groups_[k].lr = groups_[k].initial_lr = group_lr_[k].value_or(lr);
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.set_grad({});
}

void Optimizer::check_lr(double lr, const std::string& who) {
  TAPE_CHECK(std::isfinite(lr) && lr >= 0.0, who, ": lr must be >= 0, got ", lr);
}

void Optimizer::set_lr(double lr) {
  check_lr(lr, type_name() + ".set_lr");
  for (auto& g : groups_) g.lr = lr;
}

void Optimizer::set_lr(size_t group, double lr) {
  TAPE_CHECK(group < groups_.size(), type_name(), ".set_lr: group ", group, " out of range (", groups_.size(),
             " groups)");
  check_lr(lr, type_name() + ".set_lr");
  groups_[group].lr = lr;
}

void Optimizer::set_initial_lr(double lr) {
  check_lr(lr, type_name() + ".set_initial_lr");
  for (auto& g : groups_) g.initial_lr = lr;
}

void Optimizer::for_each_grad(double default_weight_decay, const Update& update) {
  NoGradGuard no_grad;
  ++step_count_;
  for (const ParamGroupSettings& group : groups_) {
    const double wd = group.weight_decay.value_or(default_weight_decay);
    for (size_t i = group.begin; i < group.end; ++i) {
      Tensor& p = params_[i];
      const Tensor g = p.grad();
      if (!g.defined()) continue;
      update(i, p, g, group.lr, wd);
      p.impl()->storage->bump_version();
    }
  }
}

size_t Optimizer::add_state_slot(std::string name) {
  slot_names_.push_back(std::move(name));
  slots_.emplace_back(params_.size());
  return slots_.size() - 1;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState s;
  s.scalars["step"] = double(step_count_);
  s.scalars["lr"] = lr();
  s.scalars["initial_lr"] = initial_lr();
  for (const auto& [k, v] : hyper_parameters()) s.scalars[k] = v;
  // with several groups (or a group's own weight decay): every group's settings
  for (size_t k = 0; k < groups_.size(); ++k) {
    const ParamGroupSettings& g = groups_[k];
    const std::string prefix = "group." + std::to_string(k) + ".";
    if (groups_.size() > 1) {
      s.scalars[prefix + "lr"] = g.lr;
      s.scalars[prefix + "initial_lr"] = g.initial_lr;
      s.scalars[prefix + "size"] = double(g.end - g.begin);
    }
    if (g.weight_decay) s.scalars[prefix + "weight_decay"] = *g.weight_decay;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "param." + std::to_string(i) + ".";
    if (param_steps_[i] > 0) s.scalars[prefix + "step"] = double(param_steps_[i]);
    for (size_t k = 0; k < slots_.size(); ++k)
      if (slots_[k][i].defined()) s.tensors[prefix + slot_names_[k]] = slots_[k][i].detach().clone();
  }
  return s;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  const std::string who = type_name() + ".load_state_dict";
  auto scalar = [&](const std::string& name) {
    auto it = state.scalars.find(name);
    TAPE_CHECK(it != state.scalars.end(), who, ": missing entry ", name);
    return it->second;
  };
  auto count = [&](const std::string& name) {
    const double v = scalar(name);
    TAPE_CHECK(v >= 0 && v == std::floor(v) && v < 9.0e15, who, ": ", name, " must be a count >= 0, got ", v);
    return int64_t(v);
  };

  // 1. Scalars: validate on a copy of the hyper-parameters, apply at the end.
  const int64_t step = count("step");
  const double lr = scalar("lr"), initial_lr = scalar("initial_lr");
  check_lr(lr, who + ": lr");
  check_lr(initial_lr, who + ": initial_lr");
  const std::map<std::string, double> old_hp = hyper_parameters();
  std::map<std::string, double> hp;
  for (const auto& kv : old_hp) hp[kv.first] = scalar(kv.first);
  std::set<std::string> known{"step", "lr", "initial_lr"};
  for (const auto& kv : hp) known.insert(kv.first);

  // Groups: with several, each one's lr, initial_lr and size (which must match);
  // a group's own weight decay when it has one.
  std::vector<ParamGroupSettings> groups = groups_;
  for (size_t k = 0; k < groups.size(); ++k) {
    ParamGroupSettings& g = groups[k];
    const std::string prefix = "group." + std::to_string(k) + ".";
    if (groups.size() > 1) {
      g.lr = scalar(prefix + "lr");
      g.initial_lr = scalar(prefix + "initial_lr");
      check_lr(g.lr, who + ": " + prefix + "lr");
      check_lr(g.initial_lr, who + ": " + prefix + "initial_lr");
      const int64_t size = count(prefix + "size");
      TAPE_CHECK(size_t(size) == g.end - g.begin, who, ": parameter group ", k, " has ", size,
                 " parameters in the state but ", g.end - g.begin, " in the optimizer");
      known.insert({prefix + "lr", prefix + "initial_lr", prefix + "size"});
    } else {
      g.lr = lr;
      g.initial_lr = initial_lr;
    }
    const std::string wd = prefix + "weight_decay";
    TAPE_CHECK(state.scalars.count(wd) == size_t(g.weight_decay.has_value()), who, ": ",
               g.weight_decay ? "missing entry " : "unexpected entry ", wd,
               g.weight_decay ? " (the optimizer's group has its own weight decay)" : "");
    if (g.weight_decay) {
      g.weight_decay = scalar(wd);
      TAPE_CHECK(std::isfinite(*g.weight_decay) && *g.weight_decay >= 0.0, who, ": ", wd, " must be >= 0, got ",
                 *g.weight_decay);
      known.insert(wd);
    }
  }

  // 2. Per-parameter steps and buffers.
  std::vector<int64_t> steps(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string name = "param." + std::to_string(i) + ".step";
    if (state.scalars.count(name)) {
      steps[i] = count(name);
      known.insert(name);
    }
  }
  for (const auto& kv : state.scalars)
    TAPE_CHECK(known.count(kv.first), who, ": unexpected entry ", kv.first);

  // Every tensor entry must name a parameter index and a slot of this optimizer.
  for (const auto& kv : state.tensors) {
    bool ok = false;
    for (size_t i = 0; i < params_.size() && !ok; ++i)
      for (size_t k = 0; k < slot_names_.size() && !ok; ++k)
        ok = kv.first == "param." + std::to_string(i) + "." + slot_names_[k];
    TAPE_CHECK(ok, who, ": unexpected entry ", kv.first);
  }

  set_hyper_parameters(hp);  // validates; undone below if anything else fails
  try {
    const std::vector<std::string> in_use = state_names();
    std::vector<std::vector<Tensor>> slots(slots_.size(), std::vector<Tensor>(params_.size()));
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string prefix = "param." + std::to_string(i) + ".";
      for (size_t k = 0; k < slot_names_.size(); ++k) {
        const std::string name = prefix + slot_names_[k];
        auto it = state.tensors.find(name);
        const bool wanted = steps[i] > 0 && std::find(in_use.begin(), in_use.end(), slot_names_[k]) != in_use.end();
        if (!wanted) {
          TAPE_CHECK(it == state.tensors.end(), who, ": unexpected entry ", name);
          continue;
        }
        TAPE_CHECK(it != state.tensors.end(), who, ": missing entry ", name);
        const Tensor& t = it->second;
        TAPE_CHECK(t.defined() && t.dtype() == params_[i].dtype(), who, ": ", name, " must be a defined ",
                   dtype_name(params_[i].dtype()), " tensor (the parameter's dtype)");
        TAPE_CHECK(t.shape() == params_[i].shape(), who, ": ", name, " has shape ", t.shape(), ", expected ",
                   params_[i].shape());
        NoGradGuard no_grad;
        slots[k][i] = t.detach().clone();
      }
    }
    slots_ = std::move(slots);
  } catch (...) {
    set_hyper_parameters(old_hp);
    throw;
  }
  step_count_ = step;
  groups_ = std::move(groups);
  param_steps_ = std::move(steps);
}

namespace detail {
template <class T>
const T* grad_data(const Tensor& p, const Tensor& g, Tensor& holder, const char* who, size_t index) {
  TAPE_CHECK(g.dtype() == p.dtype() && g.shape() == p.shape(), who, ": gradient of parameter ", index,
             " has shape ", g.shape(), " (", dtype_name(g.dtype()), "), expected ", p.shape(), " (",
             dtype_name(p.dtype()), ")");
  if (g.is_contiguous()) return g.data<T>();
  holder = g.contiguous();
  return holder.data<T>();
}
template const float* grad_data<float>(const Tensor&, const Tensor&, Tensor&, const char*, size_t);
template const double* grad_data<double>(const Tensor&, const Tensor&, Tensor&, const char*, size_t);
}  // namespace detail

}  // namespace tape::optim
