#include "tape/nn/sequential.hpp"

#include <typeinfo>

#include "tape/nn/activation.hpp"
#include "tape/nn/layers.hpp"
#include "tape/ops/fused.hpp"

namespace tape::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) { push_back(std::to_string(modules_.size()), std::move(module)); }

void Sequential::push_back(std::string name, std::shared_ptr<Module> module) {
  TAPE_CHECK(module != nullptr, "Sequential::push_back: module \"", name, "\" is null");
  register_module(std::move(name), module);
  modules_.push_back(std::move(module));
}

namespace {

/// m is exactly an M (a subclass may override forward) with no forward hooks.
template <class M>
const M* plain_module(const std::shared_ptr<Module>& m) {
  if (typeid(*m) != typeid(M) || m->has_forward_hooks()) return nullptr;
  return static_cast<const M*>(m.get());
}

}  // namespace

// Note: Conv2d → ReLU → MaxPool2d runs as the fused conv2d_relu_max_pool2d op
// (ops/conv_block.cpp: the blocked conv output stays in cache), with the results
// of running the three modules, in training and in inference (NoGradGuard). Not
// when a hook is registered on any of them (they must see their own inputs and
// outputs), nor when TAPE_FUSE=0, nor while summary() runs: it records each
// module's output shape in Module::operator().
Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  const bool fuse = !Module::recording_summary() && fusion_enabled();
  for (size_t i = 0; i < modules_.size();) {
    if (fuse && i + 2 < modules_.size()) {
      const auto* conv = plain_module<Conv2d>(modules_[i]);
      const auto* pool = conv && plain_module<ReLU>(modules_[i + 1]) ? plain_module<MaxPool2d>(modules_[i + 2]) : nullptr;
      if (pool && y.defined() && y.dim() == 4 && y.size(1) == conv->options.in_channels()) {
        const auto& o = conv->options;
        y = conv2d_relu_max_pool2d(y, conv->weight, conv->bias, pool->options.kernel_size(), pool->options.stride(),
                                   o.stride(), o.padding(), o.dilation(), o.groups());
        i += 3;
        continue;
      }
    }
    y = (*modules_[i])(y);
    ++i;
  }
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  TAPE_CHECK(i < modules_.size(), "Sequential: index ", i, " is out of range (size ", modules_.size(), ")");
  return modules_[i];
}

}  // namespace tape::nn
