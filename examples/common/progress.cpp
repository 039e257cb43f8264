#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace tape::examples {

ProgressBar::ProgressBar(int64_t total, bool force)
    : total_(total), enabled_(total > 0 && (force || isatty(STDOUT_FILENO))) {}

void ProgressBar::update(int64_t done, const std::string& suffix) {
  if (!enabled_ || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;  // ~10 redraws a second
  last_ = now;
  constexpr int kWidth = 30;
  const int filled = int(kWidth * done / total_);
  std::string bar(size_t(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(size_t(kWidth - filled - 1), ' ');
  std::printf("\r  [%s] %lld/%lld %s\033[K", bar.c_str(), (long long)done, (long long)total_, suffix.c_str());
  std::fflush(stdout);
}

void ProgressBar::clear() {
  if (!enabled_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
}

}  // namespace tape::examples
