#pragma once
// Timing helpers for the benchmarks: warm up, then the median of repeats.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace bench {

/// Median seconds of `reps` calls of f after `warmup` calls.
inline double median_seconds(const std::function<void()>& f, int reps = 20, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// A memory figure from /proc/self/status ("VmHWM" peak, "VmRSS" current), in MB.
inline double proc_status_mb(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  const std::string prefix = std::string(key) + ":";
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, prefix.c_str(), prefix.size()) == 0) {
      kb = std::atof(line + prefix.size());
      break;
    }
  std::fclose(f);
  return kb / 1024;
}
inline double peak_rss_mb() { return proc_status_mb("VmHWM"); }
inline double rss_mb() { return proc_status_mb("VmRSS"); }

/// One result row: "name  value unit" (machine-readable: name|value|unit with --tsv).
inline void row(const std::string& name, double value, const std::string& unit) {
  std::printf("%-44s %12.3f %s\n", name.c_str(), value, unit.c_str());
  std::fflush(stdout);
}

}  // namespace bench
