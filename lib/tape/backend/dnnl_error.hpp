#pragma once
// Internal (not installed): the one place where oneDNN's exceptions (and any
// other non-tape exception thrown under an op: std::bad_alloc, ...) become a
// tape::Error naming the op and the shapes. Every op runs its oneDNN part —
// primitive-descriptor creation and execute — inside translate_errors.
#include <initializer_list>

#include "tape/core/error.hpp"

namespace tape::backend {

using ShapeRefs = std::initializer_list<const Shape*>;

/// Rethrows the exception being handled as a tape::Error "op: ... for shapes
/// [..] and [..]". Call only from a catch block.
[[noreturn]] void rethrow_as_error(const char* op, ShapeRefs shapes);

/// f(), with any exception other than tape::Error translated by rethrow_as_error.
/// Note: a try block costs nothing on the happy path, so this wraps hot ops.
template <class F>
decltype(auto) translate_errors(const char* op, ShapeRefs shapes, F&& f) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (...) {
    rethrow_as_error(op, shapes);
  }
}

}  // namespace tape::backend
