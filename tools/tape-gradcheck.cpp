// tape-gradcheck: analytic gradients against central finite differences, for every
// registered op (or one), for the parameters of a whole example network, or for
// the checker itself.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tool_util.hpp"
#include "tape_testing/gradcheck_ops.hpp"

using namespace tape;
using namespace tape::testing;
using namespace tape::examples;
using tape::tools::print_table;
using tape::tools::sci;

namespace {

std::string tolerance_str(double atol, double rtol) { return str_cat("atol ", sci(atol, 0), " rtol ", sci(rtol, 0)); }

Dtype parse_dtype(const std::string& s) {
  if (s == "float64") return Dtype::Float64;
  if (s == "float32") return Dtype::Float32;
  throw Error(str_cat("--dtype: unknown dtype '", s, "' (valid: float64, float32)"));
}

int check_ops(const std::string& only, uint64_t seed, Dtype dtype, bool second_order) {
  std::vector<const OpInfo*> ops;
  if (!only.empty()) {
    const OpInfo* op = find_op(only);
    if (!op) {
      std::string names;
      for (const auto& o : op_registry()) names += (names.empty() ? "" : ", ") + o.name;
      throw Error(str_cat("--op: unknown op '", only, "' (valid: ", names, ")"));
    }
    ops.push_back(op);
  } else {
    for (const auto& o : op_registry()) ops.push_back(&o);
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> failures;
  size_t checked_ops = 0, samples = 0, skipped = 0;
  for (const OpInfo* op : ops) {
    if (!op->differentiable) {
      ++skipped;
      continue;
    }
    ++checked_ops;
    const GradcheckOptions opt = gradcheck_options(*op, dtype, seed);
    for (const SampleCheck& c : second_order ? gradgradcheck_op(*op, seed) : gradcheck_op(*op, seed, dtype)) {
      ++samples;
      const GradcheckResult& r = c.result;
      rows.push_back({op->name, c.sample, c.inputs, c.numeric ? sci(r.max_abs_err) : "-",
                      c.numeric ? sci(r.max_rel_err) : "-", c.numeric ? sci(r.max_tol_ratio) : "-",
                      c.numeric ? tolerance_str(*opt.atol, *opt.rtol) : "shapes", r.ok ? "PASS" : "FAIL"});
      if (!r.ok) failures.push_back(op->name + " (" + c.sample + "): " + r.message);
    }
  }
  const GradcheckTolerances def = gradcheck_defaults(dtype);
  std::cout << (second_order ? "gradgradcheck (second derivatives, through create_graph) of " : "gradcheck of ")
            << checked_ops << " registry entr" << (checked_ops == 1 ? "y" : "ies") << " (" << samples
            << " samples) in " << dtype_name(dtype) << " against central differences (eps " << sci(def.eps, 0)
            << ", seed " << seed << "; shapes in parentheses need no grad";
  if (skipped) std::cout << "; " << skipped << " entries without a gradient skipped";
  std::cout << ")\n\n";
  print_table(std::cout, {"op", "sample", "inputs", "max abs err", "max rel err", "err/tol", "tolerance", "result"},
              rows);
  std::cout << "\n" << samples - failures.size() << " passed, " << failures.size() << " failed\n";
  for (const auto& f : failures) std::cout << "FAIL " << f << "\n";
  return failures.empty() ? 0 : 1;
}

int check_model(const std::string& model, int64_t batch, int64_t max_elements, float eps, float atol, float rtol,
                uint64_t seed) {
  ModelSpec spec;
  TAPE_CHECK(tools::model_spec_for(model, spec), "--model: unknown model '", model, "' (valid: mlp, deep, lenet5)");
  TAPE_CHECK(batch > 0, "--batch must be positive, got ", batch);
  TAPE_CHECK(max_elements >= 0, "--max-elements must be >= 0, got ", max_elements);
  TAPE_CHECK(eps > 0.f, "--eps must be positive, got ", eps);
  TAPE_CHECK(atol >= 0.f && rtol >= 0.f, "--atol and --rtol must be >= 0, got ", atol, " and ", rtol);

  manual_seed(seed);
  auto net = build_model(spec);
  Generator g(seed + 1);
  const Tensor x = randn({batch, 1, 28, 28}, g);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < batch; ++i) labels.push_back(int64_t(g.below(10)));
  const Tensor y = tensor(labels, {batch});
  // The parameters are the inputs: gradcheck perturbs their data in place and
  // this closure reads them through the network, so it sees every perturbation.
  auto loss = [&](const std::vector<Tensor>&) { return cross_entropy((*net)(x), y); };

  GradcheckOptions opt;
  opt.eps = eps;
  opt.atol = atol;
  opt.rtol = rtol;
  opt.seed = seed;
  opt.max_elements_per_input = max_elements;
  // Note: ReLU and max-pool have kinks. Perturbing one weight by ε moves some
  // pre-activations across 0 (or switches a pooling window's maximum) now and
  // then — for a first-layer conv weight, which touches every pixel, almost
  // always — and the central difference there averages the slopes on both
  // sides. A smaller ε does not help in float32: the loss carries a few ulps of
  // rounding noise, so the numeric error grows like 4e-7/ε (≈ 4e-3 at ε = 1e-4,
  // over the tolerance; ≈ 4e-4 at the default 1e-3). So ε stays 1e-3, elements
  // where the loss visibly bends within ±ε are counted as kinks rather than
  // judged (see excuse_kinks), and atol is 2e-3 rather than the ops' 1e-3 to
  // absorb bends too mild to see through the noise (about 1 LeNet-5 run in 150
  // failed marginally at 1e-3). A 5 % error in a backward is still caught
  // wherever |grad| ≳ 0.05, which the table's max |grad| column shows is most
  // of each parameter.
  opt.excuse_kinks = true;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> failures;
  int64_t checked = 0, kinks = 0;
  for (const auto& [name, p] : net->named_parameters()) {
    net->zero_grad();
    const GradcheckResult r = gradcheck(loss, {p}, opt);
    checked += r.checked;
    kinks += r.kinks;
    float max_grad = 0.f;  // of the analytic gradient, to compare the errors with
    for (float v : p.grad().to_vector<float>()) max_grad = std::max(max_grad, std::fabs(v));
    rows.push_back({name, shape_str(p.shape()), str_cat(r.checked, "/", p.numel()), std::to_string(r.kinks),
                    sci(max_grad), sci(r.max_abs_err), sci(r.max_rel_err), r.ok ? "PASS" : "FAIL"});
    if (!r.ok) failures.push_back(name + ": " + r.message);
  }
  std::cout << "gradcheck of " << spec.to_string() << " (" << net->num_parameters() << " parameters): "
            << "cross_entropy on a random batch of " << batch << ", eps " << sci(eps, 0) << ", "
            << tolerance_str(atol, rtol) << ", seed " << seed << "\n\n";
  print_table(std::cout, {"parameter", "shape", "checked", "kinks", "max |grad|", "max abs err", "max rel err", "result"}, rows);
  std::cout << "\n" << rows.size() - failures.size() << " passed, " << failures.size() << " failed ("
            << checked << " elements checked, " << kinks << " excused as kinks)\n";
  for (const auto& f : failures) std::cout << "FAIL " << f << "\n";
  return failures.empty() ? 0 : 1;
}

int self_test() {
  const SelfTestResult st = gradcheck_self_test();
  struct Case {
    const char* what;
    const GradcheckResult* r;
    bool expect_ok;
  };
  const Case cases[] = {{"Float64: correct backward", &st.correct, true},
                        {"Float64: backward 0.1 % off", &st.tenth_percent_off, false},
                        {"Float64: backward 5 % off", &st.five_percent_off, false},
                        {"Float64: all-zero backward", &st.all_zero, false},
                        {"Float32: backward 0.1 % off", &st.float32_tenth_percent_off, true}};
  std::vector<std::vector<std::string>> rows;
  bool all_right = true;
  for (const Case& c : cases) {
    const bool right = c.r->ok == c.expect_ok;
    all_right = all_right && right;
    rows.push_back({c.what, c.r->ok ? "PASS" : "FAIL", c.expect_ok ? "PASS" : "FAIL", sci(c.r->max_rel_err),
                    tolerance_str(c.r->used.atol, c.r->used.rtol), right ? "ok" : "WRONG", c.r->message});
  }
  std::cout << "gradcheck self-test on y = x^2 with backward dx = factor * 2x * g (factor 1, 1.001, 1.05, 0)\n\n";
  print_table(std::cout, {"backward", "result", "expected", "max rel err", "tolerance", "verdict", "message"}, rows);
  std::cout << "\n"
            << (all_right ? "the checker works: in Float64 it passes the correct backward and catches the 0.1 % and 5 % "
                            "errors and the all-zero backward (Float32 cannot see 0.1 %: that is why ops are checked "
                            "in Float64)\n"
                          : "THE CHECKER IS BROKEN: see the WRONG rows\n");
  return all_right ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("tape-gradcheck", [&] {
    std::string op, model, dtype = "float64";
    uint64_t seed = 0;
    int64_t batch = 2, max_elements = 32;
    float eps = 1e-3f, atol = 2e-3f, rtol = 1e-2f;
    bool self = false, second_order = false;
    po::options_description desc("tape-gradcheck options");
    desc.add_options()("help", "show this help")
        ("op", po::value(&op), "check only this registry op (default: every op)")
        ("seed", po::value(&seed)->default_value(seed), "seed for the sample inputs and the random upstream gradient")
        ("dtype", po::value(&dtype)->default_value(dtype), "ops: the dtype of the samples, float64 or float32 (its looser defaults)")
        ("second-order", po::bool_switch(&second_order),
         "ops: check second derivatives (gradgradcheck: the backward recorded with create_graph), in float64")
        ("model", po::value(&model), "check the parameter gradients of a whole network instead: mlp | deep | lenet5")
        ("batch", po::value(&batch)->default_value(batch), "--model: batch size of the random input")
        ("max-elements", po::value(&max_elements)->default_value(max_elements),
         "--model: elements checked per parameter, sampled from the seed (0 = all; slow)")
        ("eps", po::value(&eps)->default_value(eps, "1e-3"), "--model: finite-difference step")
        ("atol", po::value(&atol)->default_value(atol, "2e-3"), "--model: absolute tolerance")
        ("rtol", po::value(&rtol)->default_value(rtol, "1e-2"), "--model: relative tolerance")
        ("self-test", po::bool_switch(&self),
         "check the checker: a correct backward must pass; in float64 one 0.1%-off, one 5%-off and an all-zero one must fail");
    if (!parse_flags(argc, argv, desc,
                     "usage: tape-gradcheck [--op NAME] [--seed N] [--dtype float64|float32] [--second-order]\n"
                     "       tape-gradcheck --model mlp|deep|lenet5 [--batch N] [--max-elements N]\n"
                     "       tape-gradcheck --self-test\n"
                     "Compares analytic gradients with central finite differences; exits 1 if any check fails."))
      return 0;
    TAPE_CHECK(int(!op.empty()) + int(!model.empty()) + int(self) <= 1,
               "--op, --model and --self-test are alternatives: give at most one");
    if (self) return self_test();
    if (!model.empty()) return check_model(model, batch, max_elements, eps, atol, rtol, seed);
    TAPE_CHECK(!second_order || (model.empty() && !self), "--second-order checks registry ops: not with --model or --self-test");
    TAPE_CHECK(!second_order || dtype == "float64", "--second-order runs in float64 only, got --dtype ", dtype);
    return check_ops(op, seed, parse_dtype(dtype), second_order);
  });
}
