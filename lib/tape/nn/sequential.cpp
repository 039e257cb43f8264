#include "tape/nn/sequential.hpp"

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

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& m : modules_) y = (*m)(y);
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  TAPE_CHECK(i < modules_.size(), "Sequential: index ", i, " is out of range (size ", modules_.size(), ")");
  return modules_[i];
}

}  // namespace tape::nn
