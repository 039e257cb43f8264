#pragma once
// Test helper: the message of the tape::Error a callable throws.
#include <exception>
#include <functional>
#include <string>

#include <tape/core/error.hpp>

namespace tape_test {

/// The tape::Error message `f` throws ("" if none; other exceptions are marked).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tape::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A tape::Error: ") + e.what();
  }
  return "";
}

}  // namespace tape_test
