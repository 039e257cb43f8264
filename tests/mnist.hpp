#pragma once
// Where the tests find MNIST: $TAPE_MNIST_DIR, else data/mnist in the source
// tree. A test that needs it is registered with
//   TEST_CASE("..." * doctest::skip(!tape_test::mnist_available()))
// so a machine without MNIST reports it as skipped, not passed (tests/main.cpp
// counts it); `TAPE_MNIST_DIR=/nowhere tape_tests` shows what CI does then.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tape_test {

inline std::string mnist_dir() {
  if (const char* d = std::getenv("TAPE_MNIST_DIR"); d != nullptr && *d != '\0') return d;
#ifdef TAPE_SOURCE_DIR
  return std::string(TAPE_SOURCE_DIR) + "/data/mnist";
#else
  return "data/mnist";
#endif
}

/// All four files of tools/fetch_mnist.sh are in mnist_dir().
inline bool mnist_available() {
  std::error_code ec;
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"})
    if (!std::filesystem::is_regular_file(mnist_dir() + "/" + f, ec)) return false;
  return true;
}

}  // namespace tape_test
