#pragma once
// Progress within an epoch: a bar redrawn in place when stdout is a terminal,
// nothing otherwise (logs stay one line per epoch).
#include <chrono>
#include <cstdint>
#include <string>

namespace tape::examples {

class ProgressBar {
 public:
  /// Enabled only when stdout is a terminal (unless forced); total 0: never.
  explicit ProgressBar(int64_t total, bool force = false);
  void update(int64_t done, const std::string& suffix = {});
  /// Erases the bar so the epoch line can take its place.
  void clear();

 private:
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace tape::examples
