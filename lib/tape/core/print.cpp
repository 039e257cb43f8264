// Printing tensors the way PyTorch does: nested brackets, aligned columns,
// "..." past 1000 elements (3 items each side), then shape and dtype.
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "tape/core/tensor.hpp"

namespace tape {
namespace {

constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdge = 3;

struct Printer {
  const Tensor& t;
  bool elide;
  bool ints;
  bool bools;  // Bool: ints printed as True / False
  bool all_whole = true;  // every float is an integer value: print "1." like PyTorch
  bool sci = false;
  int width = 1;
  std::vector<double> fvals;
  std::vector<int64_t> ivals;
  Shape st;

  std::string fmt(int64_t off) const {
    char buf[64];
    if (bools) std::snprintf(buf, sizeof buf, "%s", ivals[size_t(off)] ? "True" : "False");
    else if (ints) std::snprintf(buf, sizeof buf, "%lld", (long long)ivals[size_t(off)]);
    else {
      double v = fvals[size_t(off)];
      if (std::isnan(v)) std::snprintf(buf, sizeof buf, "nan");
      else if (std::isinf(v)) std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
      else if (sci) std::snprintf(buf, sizeof buf, "%.4e", double(v));
      else if (all_whole) std::snprintf(buf, sizeof buf, "%.0f.", double(v));
      else std::snprintf(buf, sizeof buf, "%.4f", double(v));
    }
    return buf;
  }

  void collect_format() {
    const auto n = size_t(t.numel());
    double amax = 0.0, amin = INFINITY;
    for (size_t i = 0; !ints && i < n; ++i) {
      double v = fvals[i];
      if (!std::isfinite(v)) continue;
      if (v != std::floor(v)) all_whole = false;
      amax = std::max(amax, std::fabs(v));
      if (v != 0) amin = std::min(amin, std::fabs(v));
    }
    if (!ints && !all_whole && (amax >= 1e8 || (amin < 1e-4 && amax / amin > 1e3))) sci = true;
    for (size_t i = 0; i < n; ++i) width = std::max<int>(width, int(fmt(int64_t(i)).size()));
  }

  // Iterative walk over the index space with elision, writing nested brackets.
  void write(std::ostream& os, const std::string& indent) const {
    const auto nd = size_t(t.dim());
    if (t.numel() == 0) {  // PyTorch: tensor([], size=(0, 3)); the shape follows below
      os << "[]";
      return;
    }
    if (nd == 0) {
      os << fmt(0);
      return;
    }
    auto dim_items = [&](size_t d) {
      std::vector<int64_t> items;
      int64_t n = t.shape()[d];
      if (elide && n > 2 * kEdge) {
        for (int64_t i = 0; i < kEdge; ++i) items.push_back(i);
        items.push_back(-1);  // "..."
        for (int64_t i = n - kEdge; i < n; ++i) items.push_back(i);
      } else
        for (int64_t i = 0; i < n; ++i) items.push_back(i);
      return items;
    };
    std::vector<std::vector<int64_t>> items(nd);
    for (size_t d = 0; d < nd; ++d) items[d] = dim_items(d);
    std::vector<size_t> pos(nd, 0);
    size_t d = 0;
    std::vector<int64_t> base(nd + 1, 0);
    os << "[";
    while (true) {
      int64_t i = items[d][pos[d]];
      if (d + 1 == nd) {
        if (i < 0) os << std::string(size_t(std::max(width, 3) - 3), ' ') << "...";
        else {
          std::string s = fmt(base[d] + i * st[d]);
          os << std::string(size_t(width) - s.size(), ' ') << s;
        }
      } else if (i < 0) {
        os << "...";
      } else {
        base[d + 1] = base[d] + i * st[d];
        ++d;
        pos[d] = 0;
        os << "[";
        continue;
      }
      // advance, closing brackets as dims finish
      while (true) {
        if (++pos[d] < items[d].size()) {
          os << ",";
          if (d + 1 == nd) os << " ";
          else os << std::string(nd - d - 1, '\n') << indent << std::string(d + 1, ' ');
          break;
        }
        os << "]";
        if (d == 0) return;
        --d;
      }
    }
  }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  Tensor c = t.contiguous();
  const bool bools = c.dtype() == Dtype::Bool;
  Printer p{c, c.numel() > kThreshold, c.dtype() == Dtype::Int64 || bools, bools, true, false, 1, {}, {}, {}};
  if (bools) {
    const bool* pb = c.data<bool>();
    p.ivals.assign(pb, pb + c.numel());
  } else if (p.ints) p.ivals = c.to_vector<int64_t>();
  else p.fvals = detail::cast_copy(c, Dtype::Float64).to_vector<double>();
  p.st = contiguous_strides(c.shape());
  p.collect_format();
  os << "tensor(";
  p.write(os, std::string(7, ' '));
  os << ", shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype());
  if (t.grad_fn()) os << ", grad_fn=<" << t.grad_fn_name() << ">";
  else if (t.requires_grad()) os << ", requires_grad=true";
  return os << ")";
}

std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace tape
