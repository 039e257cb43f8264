#pragma once
/// \file TAPE_ARG: LibTorch-style options fields with a chainable setter and a getter,
/// used by the layer and optimizer options structs:
///
///   struct LinearOptions { TAPE_ARG(bool, bias) = true; };
///   LinearOptions o;  o.bias(false);  bool b = o.bias();

/// Declares a private field `name_` plus `name(v)` (sets, returns *this) and `name()` (gets).
#define TAPE_ARG(T, name)                              \
 public:                                               \
  auto& name(const T& new_##name) {                    \
    this->name##_ = new_##name;                        \
    return *this;                                      \
  }                                                    \
  const T& name() const noexcept { return this->name##_; } \
                                                       \
 private:                                              \
  T name##_
