#pragma once
// Small helpers shared by the tools (header-only, not part of libtape).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "models.hpp"

namespace tape::tools {

/// The network behind a --model name: "mlp" (784-50-10), "deep" (784-370-115-50-10)
/// or "lenet5". Returns false for any other name.
inline bool model_spec_for(const std::string& name, examples::ModelSpec& spec) {
  spec = examples::ModelSpec{};
  if (name == "mlp") return true;  // the default spec: hidden {50}, relu
  if (name == "deep") {
    spec.hidden = {370, 115, 50};
    return true;
  }
  if (name == "lenet5") {
    spec = examples::ModelSpec::lenet5();
    return true;
  }
  return false;
}

/// "1.2e-05"
inline std::string sci(double v, int digits = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*e", digits, v);
  return buf;
}

/// Prints rows as left-aligned columns separated by two spaces, the header
/// underlined. Cells are ASCII, so byte length is display width.
inline void print_table(std::ostream& os, const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t c = 0; c < header.size(); ++c) w[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t c = 0; c < r.size(); ++c) {
      s += r[c];
      if (c + 1 < r.size()) s += std::string(w[c] - r[c].size() + 2, ' ');
    }
    os << s << "\n";
  };
  line(header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < w.size(); ++c) rule.push_back(std::string(w[c], '-'));
  line(rule);
  for (const auto& r : rows) line(r);
}

}  // namespace tape::tools
