#pragma once
// Internal (not installed): calling a kernel template for a tensor's dtype.
//
//   visit_float(x.dtype(), "exp", [&]<class T>() { ... T is float or double ... });
//
// One switch per family, so a kernel is written once as a template and never
// copied per dtype.
#include "tape/core/error.hpp"
#include "tape/core/dtype.hpp"

namespace tape::detail {

/// f.template operator()<T>() for any dtype's storage type.
template <class F>
decltype(auto) visit_dtype(Dtype d, F&& f) {
  switch (d) {
    case Dtype::Float32: return f.template operator()<float>();
    case Dtype::Float64: return f.template operator()<double>();
    case Dtype::Int64: return f.template operator()<int64_t>();
    case Dtype::Bool: return f.template operator()<bool>();
    case Dtype::BFloat16: return f.template operator()<BFloat16>();
  }
  throw Error("unknown dtype");
}

/// f.template operator()<T>() for T = float or double; any other dtype is an
/// error naming the op.
template <class F>
decltype(auto) visit_float(Dtype d, const char* op, F&& f) {
  if (d == Dtype::Float64) return f.template operator()<double>();
  TAPE_CHECK(d == Dtype::Float32, op, ": expected a Float32 or Float64 tensor, got ", dtype_name(d));
  return f.template operator()<float>();
}

/// T = float, double or int64_t (ops with an integer kernel too).
template <class F>
decltype(auto) visit_number(Dtype d, const char* op, F&& f) {
  if (d == Dtype::Float64) return f.template operator()<double>();
  if (d == Dtype::Int64) return f.template operator()<int64_t>();
  TAPE_CHECK(d == Dtype::Float32, op, ": expected a Float32, Float64 or Int64 tensor, got ", dtype_name(d));
  return f.template operator()<float>();
}

}  // namespace tape::detail
