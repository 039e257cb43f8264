// The OpInfo registry and gradcheck over it: every differentiable op checked in
// Float64 on each of its samples, a 0.1 % wrong backward caught, Float32 vs
// Float64 consistency, declared dtypes, non-contiguous samples, coverage of
// ops.hpp, and formulas read from the op sources.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <tape/tape.hpp>
#include <tape_testing/gradcheck_ops.hpp>
#include <tape_testing/registry.hpp>

using namespace tape;
using namespace tape::testing;

namespace {
std::string read_source(const std::string& rel) {
  std::ifstream in(std::string(TAPE_SOURCE_DIR) + "/" + rel, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read ", rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
bool has_empty_input(const SampleInput& s) {
  return std::any_of(s.inputs.begin(), s.inputs.end(), [](const Tensor& t) { return t.defined() && t.numel() == 0; });
}
constexpr Dtype kAllDtypes[] = {Dtype::Float32, Dtype::Float64, Dtype::Int64, Dtype::Bool, Dtype::BFloat16};
}  // namespace

TEST_CASE("gradcheck: every registered op in Float64, every sample") {
  REQUIRE(op_registry().size() >= 80);
  const GradcheckTolerances tol = gradcheck_defaults(Dtype::Float64);
  double worst = 0;  // the largest relative error of any (correct) op
  std::string worst_at;
  int numeric = 0, shapes_only = 0;
  for (const OpInfo& op : op_registry()) {
    for (uint64_t seed : {0u, 1u}) {
      const auto checks = gradcheck_op(op, seed);
      CHECK(checks.empty() == !op.differentiable);
      for (const SampleCheck& c : checks) {
        INFO(op.name, " seed ", seed, " sample '", c.sample, "' ", c.inputs, ": ", c.result.message);
        CHECK(c.result.ok);
        if (!c.numeric) {
          ++shapes_only;
          continue;
        }
        ++numeric;
        CHECK(c.result.used.eps == gradcheck_options(op, Dtype::Float64, seed).eps);  // Float64 tolerances
        CHECK(c.result.checked > 0);
        if (!op.rtol && !op.atol && c.result.max_tol_ratio > worst) {
          worst = c.result.max_tol_ratio;
          worst_at = op.name + " / " + c.sample;
        }
      }
    }
  }
  CHECK(numeric >= 150);
  CHECK(shapes_only >= 100);
  MESSAGE("largest |analytic − numeric| / (atol + rtol·|numeric|) of a registry op at the default Float64 "
          "tolerances (atol ", tol.atol, ", rtol ", tol.rtol, "): ", worst, " (", worst_at, ")");
  // the margin docs/gradcheck.md quotes: correct ops use under a tenth of the tolerance
  CHECK(worst < 0.1);
}

TEST_CASE("gradcheck: a backward 0.1 % off fails for every registered op") {
  // Every gradient of the op scaled by 1.001 (an identity with a wrong backward
  // on its output): the Float64 check must catch it on the basic sample.
  double weakest = 1e300;  // the smallest err/tol a mutation produced (> 1 fails)
  std::string weakest_at;
  for (const OpInfo& op : op_registry()) {
    if (!op.differentiable) continue;
    const GradcheckResult r = gradcheck_op_scaled(op, 1.001);
    INFO(op.name, ": ", r.message, " max rel err ", r.max_rel_err, " err/tol ", r.max_tol_ratio);
    CHECK_FALSE(r.ok);
    CHECK(r.max_rel_err > 5e-4);  // the error is 1e-3 of the gradient
    if (r.max_tol_ratio < weakest) {
      weakest = r.max_tol_ratio;
      weakest_at = op.name;
    }
    // and the same call with factor 1 passes (the wrapper itself is not the failure)
    CHECK(gradcheck_op_scaled(op, 1.0).ok);
  }
  MESSAGE("smallest |analytic − numeric| / tolerance a 0.1 % mutation produced: ", weakest, " (", weakest_at, ")");
  CHECK(weakest > 10);  // caught with a factor 10 to spare
}

TEST_CASE("gradcheck: self-test catches 0.1 % off in Float64, 5 % off and an all-zero gradient") {
  const SelfTestResult s = gradcheck_self_test();
  INFO(s.tenth_percent_off.message);
  CHECK(s.correct.ok);
  CHECK(s.correct.dtype == Dtype::Float64);
  CHECK(s.correct.max_rel_err < 1e-7);
  CHECK_FALSE(s.tenth_percent_off.ok);
  CHECK(s.tenth_percent_off.max_rel_err > 5e-4);  // the error is ~1e-3, the tolerance 1e-5
  CHECK_FALSE(s.five_percent_off.ok);
  CHECK(s.five_percent_off.max_rel_err > 0.02);
  CHECK_FALSE(s.all_zero.ok);
  // the Float32 check cannot see 0.1 %: its noise needs rtol 1e-2
  CHECK(s.float32_tenth_percent_off.ok);
  CHECK(s.float32_tenth_percent_off.dtype == Dtype::Float32);
}

TEST_CASE("gradcheck: defaults follow the inputs' dtype; non-contiguous and stride-0 inputs") {
  auto f = [](const std::vector<Tensor>& in) { return in[0] * in[0]; };
  Generator g(4);
  Tensor x32 = rand({3, 4}, g).requires_grad_();
  const GradcheckResult r32 = gradcheck(f, {x32});
  CHECK(r32.ok);
  CHECK(r32.dtype == Dtype::Float32);
  CHECK(r32.used.eps == 1e-3);
  Tensor x64 = rand({3, 4}, Dtype::Float64, g).requires_grad_();
  const GradcheckResult r64 = gradcheck(f, {x64});
  CHECK(r64.ok);
  CHECK(r64.dtype == Dtype::Float64);
  CHECK(r64.used.eps == 1e-6);
  CHECK(r64.used.rtol == gradcheck_defaults(Dtype::Float64).rtol);
  // explicit options win
  GradcheckOptions opt;
  opt.eps = 1e-4;
  CHECK(gradcheck(f, {x64}, opt).used.eps == 1e-4);
  // a transposed leaf is perturbed through its strides: the gradient matches
  Tensor xt = rand({4, 3}, Dtype::Float64, g).t().requires_grad_();
  REQUIRE_FALSE(xt.is_contiguous());
  const GradcheckResult rt = gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0] * in[0]; }, {xt});
  CHECK(rt.ok);
  CHECK(rt.checked == 12);
  // a stride-0 leaf cannot be perturbed one element at a time
  Tensor e = rand({1, 3}, Dtype::Float64, g).expand({4, 3}).requires_grad_();
  CHECK_THROWS_WITH_AS(gradcheck(f, {e}), doctest::Contains("stride-0"), Error);
}

TEST_CASE("gradcheck: a numerically zero gradient is not a pass") {
  Tensor x = ones({3}, Dtype::Float64).requires_grad_();
  // f(x) = x * 0 has zero gradient everywhere: the check cannot see anything
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return in[0] * 0.0; }, {x});
  CHECK(!r.ok);
  CHECK(r.message.find("zero everywhere") != std::string::npos);
}

TEST_CASE("gradcheck: Float32 and Float64 runs of every op agree") {
  // The same drawn values in both dtypes; the output and every gradient of
  // sum(y ⊙ v) must agree to the entry's consistency_rtol, relative to the
  // largest Float64 magnitude (Bool and Int64 outputs exactly).
  int compared = 0;
  double worst = 0;
  std::string worst_at;
  const double default_tol = OpInfo{}.consistency_rtol;
  for (const OpInfo& op : op_registry()) {
    if (op.consistency_rtol > default_tol) CHECK_MESSAGE(!op.consistency_note.empty(), op.name, " needs a reason");
    for (uint64_t seed : {0u, 1u}) {
      const auto checks = consistency_op(op, seed);
      CHECK(checks.empty() == !(op.supports(Dtype::Float32) && op.supports(Dtype::Float64)));
      for (const ConsistencyCheck& c : checks) {
        INFO(op.name, " seed ", seed, " sample '", c.sample, "': ", c.message, " (output ", c.output_err, ", grad ",
             c.grad_err, ", tol ", c.tol, ")");
        CHECK(c.ok);
        ++compared;
        const double e = std::max(c.output_err, c.grad_err);
        if (c.tol == default_tol && e > worst) {
          worst = e;
          worst_at = op.name + " / " + c.sample;
        }
      }
    }
  }
  CHECK(compared >= 300);
  MESSAGE("largest Float32-vs-Float64 difference at the default ", default_tol, ": ", worst, " (", worst_at, ")");
}

TEST_CASE("opinfo: declared dtypes run, undeclared ones are a tape::Error") {
  for (const OpInfo& op : op_registry()) {
    REQUIRE(!op.dtypes.empty());
    for (Dtype d : kAllDtypes) {
      INFO(op.name, " in ", std::string(dtype_name(d)));
      const std::vector<SampleInput> samples = op_samples(op, d);
      REQUIRE(!samples.empty());
      if (op.supports(d)) {
        for (const SampleInput& s : samples) {
          INFO("sample '", s.name, "'");
          Tensor y;
          try {
            y = op.fn(s.inputs);
          } catch (const std::exception& e) {
            FAIL_CHECK("declared dtype threw: ", std::string(e.what()));
            continue;
          }
          if (op.differentiable) {
            if (is_floating(d)) CHECK(y.dtype() == d);  // (Int64 / Int64 is Float32, a Bool sum Int64)
          } else {
            const bool bool_int_or_f32 = !is_floating(y.dtype()) || y.dtype() == Dtype::Float32;  // one_hot: Float32
            CHECK(bool_int_or_f32);
            CHECK_FALSE(y.requires_grad());
          }
        }
      } else {
        CHECK_THROWS_AS(op.fn(samples.front().inputs), Error);
      }
    }
  }
}

TEST_CASE("opinfo: non-contiguous samples are non-contiguous and match the basic sample") {
  // In every declared dtype: the stride-2 copy of the basic sample gives the
  // same output and gradients (Float32 kernels may round differently for a
  // strided operand, so there the bound is 1e-5 of the largest value).
  int ran = 0;
  for (const OpInfo& op : op_registry()) {
    if (!op.auto_noncontiguous) {
      CHECK_MESSAGE(!op.note.empty(), op.name, ": say why it has no automatic non-contiguous sample");
      continue;
    }
    for (Dtype d : op.dtypes) {
      std::vector<SampleInput> s = op_samples(op, d);
      REQUIRE(s.size() >= 2);
      REQUIRE(s[1].name == "non-contiguous");
      INFO(op.name, " in ", std::string(dtype_name(d)));
      bool any_strided = false;
      for (const Tensor& t : s[1].inputs) any_strided = any_strided || (t.dim() > 0 && !t.is_contiguous());
      CHECK(any_strided);
      Tensor y0, y1;
      try {
        y0 = op.fn(s[0].inputs);
        y1 = op.fn(s[1].inputs);
      } catch (const std::exception& e) {
        FAIL_CHECK("threw: ", std::string(e.what()));
        continue;
      }
      const double bound = d == Dtype::Float64 || !is_floating(y0.dtype()) ? 1e-12 : 1e-5;
      auto scale = [](const Tensor& t) {
        double m = 1;
        if (t.numel() > 0 && is_floating(t.dtype()))
          for (double v : t.to(Dtype::Float64).to_vector<double>())
            if (std::isfinite(v)) m = std::max(m, std::fabs(v));
        return m;
      };
      CHECK(max_abs_diff(y0, y1) <= bound * scale(y0));
      if (op.differentiable && y0.requires_grad() && y0.numel() > 0) {
        Tensor v = ones(y0.shape(), y0.dtype());
        y0.backward(v);
        y1.backward(v);
        for (size_t k = 0; k < s[0].inputs.size(); ++k)
          if (s[0].inputs[k].requires_grad())
            CHECK(max_abs_diff(s[0].inputs[k].grad(), s[1].inputs[k].grad()) <= bound * scale(s[0].inputs[k].grad()));
      }
      ++ran;
    }
  }
  CHECK(ran >= 200);
  // the helper itself: same values, stride 2, requires_grad kept, 0-D copied
  Tensor a = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor b = noncontiguous_copy(a);
  CHECK_FALSE(b.is_contiguous());
  CHECK(b.strides() == Shape{6, 2});
  CHECK(b.requires_grad());
  CHECK(max_abs_diff(a, b) == 0);
  CHECK(noncontiguous_copy(scalar_tensor(2.0)).item<double>() == 2.0);
}

TEST_CASE("opinfo: samples cover broadcasting and 0-element inputs") {
  // max over all elements of an empty tensor is an error, so max_all has no empty sample
  const std::set<std::string> no_empty = {"max_all"};
  for (const OpInfo& op : op_registry()) {
    INFO(op.name);
    const Dtype d = op.dtypes.front();
    const std::vector<SampleInput> s = op_samples(op, d);
    CHECK(s.front().name == "basic");
    std::set<std::string> names;
    for (const SampleInput& x : s) CHECK_MESSAGE(names.insert(x.name).second, "duplicate sample ", x.name);
    const bool has_empty = std::any_of(s.begin(), s.end(), has_empty_input);
    CHECK(has_empty == !no_empty.count(op.name));
    // binary elementwise ops and comparisons broadcast
    if ((op.group == "elementwise" || op.group == "compare") && s.front().inputs.size() >= 2) {
      bool broadcast = false;
      for (const SampleInput& x : s) broadcast = broadcast || x.name.rfind("broadcast", 0) == 0;
      const bool ok = broadcast || op.name == "scalar_ops";
      CHECK_MESSAGE(ok, "no broadcast sample");
    }
    // Float32 and Float64 draw the same numbers
    if (op.supports(Dtype::Float32) && op.supports(Dtype::Float64)) {
      const auto a = op_samples(op, Dtype::Float32), b = op_samples(op, Dtype::Float64);
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i)
        for (size_t k = 0; k < a[i].inputs.size(); ++k)
          if (is_floating(a[i].inputs[k].dtype())) CHECK(max_abs_diff(a[i].inputs[k], b[i].inputs[k]) == 0);
    }
  }
}

TEST_CASE("opinfo: every public op in ops.hpp, norm.hpp and rnn.hpp has a registry entry") {
  std::set<std::string> covered;
  for (const OpInfo& op : op_registry())
    for (const std::string& f : op.covered_functions()) covered.insert(f);
  std::set<std::string> exempt;
  for (const Exemption& e : registry_exemptions()) {
    CHECK_MESSAGE(!e.reason.empty(), e.function);
    CHECK_MESSAGE(!covered.count(e.function), e.function, " is exempt but also covered: drop the exemption");
    exempt.insert(e.function);
  }
  std::vector<std::string> declared;
  for (const char* header : {"ops.hpp", "norm.hpp", "rnn.hpp", "fused.hpp"}) {
    const std::vector<std::string> names = declared_ops(read_source(std::string("lib/tape/ops/") + header));
    CHECK_MESSAGE(!names.empty(), header);
    for (const std::string& name : names) {
      const bool has_entry = covered.count(name) > 0 || exempt.count(name) > 0;
      CHECK_MESSAGE(has_entry, header, " declares ", name,
                    " but no registry entry calls it: add an OpInfo in lib/tape_testing/registry.cpp");
      declared.push_back(name);
    }
  }
  CHECK(declared.size() >= 60);
  // every function an entry claims is declared (no stale names)
  for (const std::string& f : covered)
    if (f != "to") {
      const bool is_declared = std::find(declared.begin(), declared.end(), f) != declared.end();
      CHECK_MESSAGE(is_declared, f);
    }

  // the parser: it finds a new declaration (so the check above fails for it) ...
  const std::string fake = "namespace tape {\n"
                           "/// doc\n"
                           "Tensor frobnicate(const Tensor& x, float s);\n"
                           "  std::vector<Tensor> unbind(const Tensor& t, int64_t dim = 0);\n"
                           "Tensor operator%(const Tensor& a, const Tensor& b);\n"
                           "Tensor operator<=(const Tensor& a, float s);\n"
                           "// Tensor commented(const Tensor& x);\n"
                           "Tensor& add_(const Tensor& other);\n"
                           "Tensor frobnicate(const Tensor& x);\n"
                           "}\n";
  const std::vector<std::string> got = declared_ops(fake);
  CHECK(got == std::vector<std::string>{"frobnicate", "unbind", "operator%", "operator<="});
  CHECK_FALSE(covered.count("frobnicate"));
  CHECK_FALSE(covered.count("unbind"));
  // ... and reads the real header's multi-word declarations
  CHECK(std::find(declared.begin(), declared.end(), "split") != declared.end());
  CHECK(std::find(declared.begin(), declared.end(), "operator==") != declared.end());
}

TEST_CASE("opinfo: formulas come from the op sources, once") {
  for (const OpInfo& op : op_registry()) {
    INFO(op.name, " (", op.formula.file, ": ", op.formula.anchor, ")");
    std::string f;
    try {
      f = op_formula(op);
    } catch (const Error& e) {
      FAIL_CHECK(e.what());  // no comment and no fallback, or both
      continue;
    }
    CHECK(f.rfind("Forward:", 0) == 0);
    CHECK(f.find("Backward:") != std::string::npos);
  }
  // the parser on a made-up file: template lines skipped, continuation lines
  // joined, the labelled line picked, notes and code left out
  const std::string src = "// header\n"
                          "int x;\n"
                          "// Forward: y = a ⋈ b   Backward: none\n"
                          "template <class Cmp>\n"
                          "Tensor compare(const Tensor& a) {\n"
                          "// Forward: y = Π x   Backward: dx_i = g·y/x_i (one zero at k:\n"
                          "// only dx_k)\n"
                          "// The rest is a detail.\n"
                          "struct ProdBackward {\n"
                          "// Forward: y = conv\n"
                          "// Backward: dx = g ⋆ᵀ w\n"
                          "// Note: staging\n"
                          "class ConvBackward {\n"
                          "// softmax:     Forward: y = eˣ/Σeˣ   Backward: dx = y(g − Σg·y)\n"
                          "// log_softmax: Forward: y = x − log Σeˣ   Backward: dx = g − eʸ·Σg\n"
                          "struct SoftmaxBackward {\n"
                          "struct Bare {\n";
  CHECK(formula_in(src, {"f.cpp", "Tensor compare("}) == "Forward: y = a ⋈ b Backward: none");
  CHECK(formula_in(src, {"f.cpp", "struct ProdBackward"}) ==
        "Forward: y = Π x Backward: dx_i = g·y/x_i (one zero at k: only dx_k)");
  CHECK(formula_in(src, {"f.cpp", "class ConvBackward"}) == "Forward: y = conv Backward: dx = g ⋆ᵀ w");
  CHECK(formula_in(src, {"f.cpp", "struct SoftmaxBackward", "log_softmax:"}) ==
        "Forward: y = x − log Σeˣ Backward: dx = g − eʸ·Σg");
  CHECK(formula_in(src, {"f.cpp", "struct SoftmaxBackward", "softmax:"}) ==
        "Forward: y = eˣ/Σeˣ Backward: dx = y(g − Σg·y)");
  CHECK(formula_in(src, {"f.cpp", "struct Bare"}).empty());
  CHECK(formula_in(src, {"f.cpp", "struct Missing"}).empty());
}

TEST_CASE("gradcheck: registry entries are unique and complete") {
  std::set<std::string> names;
  for (const OpInfo& op : op_registry()) {
    CHECK(names.insert(op.name).second);
    CHECK(!op.group.empty());
    CHECK(!op.signature.empty());
    CHECK(find_op(op.name) == &op);
  }
  CHECK(find_op("no_such_op") == nullptr);
  const std::string md = ops_markdown();
  CHECK(md.find("| `mul` | `mul(a, b)` | Float32, Float64") != std::string::npos);
  CHECK(md.find("y = a * b") != std::string::npos);  // from the comment in elementwise.cpp
}
