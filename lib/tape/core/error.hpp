#pragma once
/// \file Errors: every user-facing failure is a tape::Error with a one-line message.
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <cstdint>

namespace tape {

/// The one exception type tape throws for misuse and bad input.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

using Shape = std::vector<int64_t>;

/// "[2, 3]" — how shapes appear in messages and printouts.
std::string shape_str(const Shape& s);

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  if constexpr (std::is_same_v<T, Shape>) os << shape_str(v);
  else os << v;
  append(os, rest...);
}
}  // namespace detail

/// Builds a message from pieces (Shapes print as [a, b]). (Not `cat`: that name
/// is the tensor join, as in LibTorch.)
template <class... A>
std::string str_cat(const A&... a) {
  std::ostringstream os;
  detail::append(os, a...);
  return os.str();
}

}  // namespace tape

/// Throws tape::Error(str_cat(msg...)) unless `cond` holds.
#define TAPE_CHECK(cond, ...)                                     \
  do {                                                            \
    if (!(cond)) [[unlikely]] throw ::tape::Error(::tape::str_cat(__VA_ARGS__));  \
  } while (0)
