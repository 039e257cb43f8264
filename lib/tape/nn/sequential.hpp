#pragma once
/// \file Sequential: runs its children in order; children are named "0", "1", ...
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>

#include "tape/nn/module.hpp"

namespace tape::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  /// Sequential{std::make_shared<Linear>(784, 50), std::make_shared<ReLU>()}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);

  /// Appends a child named after its index ("3").
  void push_back(std::shared_ptr<Module> module);
  /// Appends a child with a custom name.
  void push_back(std::string name, std::shared_ptr<Module> module);

  /// The composition of the children; the identity when empty.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }

  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  /// The i-th child (throws naming the index when out of range).
  const std::shared_ptr<Module>& operator[](size_t i) const;
  const std::shared_ptr<Module>& at(size_t i) const { return (*this)[i]; }
  /// The i-th child cast to M (throws when it is not an M).
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    TAPE_CHECK(m != nullptr, "Sequential::at: child ", i, " is a ", (*this)[i]->type_name(),
               ", not the requested type");
    return m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace tape::nn
