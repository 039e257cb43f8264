// Tools for seeing and checking: graph export (to_dot) and the generated op table.
#include <doctest/doctest.h>

#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <tape/tape.hpp>
#include <tape_testing/gradcheck_ops.hpp>
#include <tape_testing/registry.hpp>

using namespace tape;
using namespace tape::testing;

namespace {

size_t count(const std::string& s, const std::string& sub) {
  size_t n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
  return n;
}
/// Node statements ("  n3 [label=...]"), not edges.
size_t count_nodes(const std::string& dot) {
  std::istringstream in(dot);
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.size() > 3 && line.rfind("  n", 0) == 0 && std::isdigit(static_cast<unsigned char>(line[3])) &&
        line.find(" -> ") == std::string::npos)
      ++n;
  return n;
}
bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_CASE("to_dot: linear -> relu -> sum through a module") {
  manual_seed(1);
  nn::Sequential net;
  net.push_back("fc", std::make_shared<nn::Linear>(3, 4));
  net.push_back("act", std::make_shared<nn::ReLU>());
  Tensor x = randn({2, 3});
  Tensor y = sum(net(x));
  CHECK(count(to_dot(y), "\"leaf\\n") == 2);  // unnamed without names
  const std::string dot = to_dot(y, {.names = net.named_parameters()});
  CAPTURE(dot);

  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(contains(dot, "\"Linear\\n[2, 4]\""));
  CHECK(contains(dot, "\"Relu\\n[2, 4]\""));
  CHECK(contains(dot, "\"Sum\\nscalar\""));
  CHECK_FALSE(contains(dot, "Backward"));
  CHECK(contains(dot, "fc.weight\\n[4, 3]"));
  CHECK(contains(dot, "fc.bias\\n[4]"));
  // nodes: Sum, Relu, Linear, 2 leaves; edges: weight→Linear, bias→Linear, Linear→Relu, Relu→Sum
  CHECK(count_nodes(dot) == 5);
  CHECK(count(dot, " -> ") == 4);
  // Linear has three inputs (x needs no grad): its edges carry positions 1 and 2
  CHECK(contains(dot, "[label=\" 1\"]"));
  CHECK(contains(dot, "[label=\" 2\"]"));
  // leaves are ellipses, ops boxes; exactly one root
  CHECK(count(dot, "shape=ellipse") == 2);
  CHECK(count(dot, "shape=box") == 3);
  CHECK(count(dot, "// root") == 1);
  CHECK(count(dot, "peripheries=2") == 1);
  CHECK_FALSE(contains(dot, "grad norm"));
}

TEST_CASE("to_dot: unnamed leaves, repeated inputs, no graph") {
  Tensor a = tensor({1, 2, 3}, {3}, true);
  Tensor y = mul(a, a);
  const std::string dot = to_dot(y);
  CHECK(contains(dot, "\"leaf\\n[3]\""));
  CHECK(count(dot, " -> ") == 2);  // a feeds Mul twice, as input 0 and input 1
  CHECK(contains(dot, "[label=\" 0\"]"));

  CHECK(contains(to_dot(a), "leaf\\n[3]"));  // a leaf root
  CHECK(contains(to_dot(tensor({1, 2}, {2})), "does not require grad"));
  CHECK_THROWS_AS(to_dot(Tensor()), Error);
}

TEST_CASE("to_dot: a 10 000-node chain converts without recursion") {
  Tensor x = tensor({0.5f, -0.25f}, {2}, true);
  Tensor y = x;
  for (int i = 0; i < 10000; ++i) y = y * 1.0001f;
  const std::string dot = to_dot(y);
  CHECK(count(dot, " -> ") == 10000);
  CHECK(count_nodes(dot) == 10001);
  CHECK(count(dot, "shape=box") == 10000);
  CHECK(count(dot, "shape=ellipse") == 1);
}

TEST_CASE("to_dot: gradient norms with show_grad_norms") {
  Tensor small = tensor({1e-8f, 0.f}, {2}, true);
  Tensor big = tensor({3e3f, 4e3f}, {2}, true);
  Tensor mid = tensor({1.f, 2.f}, {2}, true);
  Tensor unused = tensor({1.f}, {1}, true);
  const DotOptions::Names names = {{"small", small}, {"big", big}, {"mid", mid}, {"unused", unused}};
  Tensor loss = sum(mul(small, small)) + sum(mul(big, big)) + sum(mul(mid, mid)) + sum(unused);
  loss.backward();
  // grads: 2·small → ‖·‖ = 2e-8; 2·big → 1e4; 2·mid → √20 ≈ 4.5
  unused.set_grad({});
  const std::string plain = to_dot(loss, {.names = names});
  CHECK_FALSE(contains(plain, "grad norm"));
  const std::string dot = to_dot(loss, {.show_grad_norms = true, .names = names});
  CAPTURE(dot);
  CHECK(contains(dot, "small\\n[2]\\ngrad norm 2.0e-08 (vanishing)"));
  CHECK(contains(dot, "big\\n[2]\\ngrad norm 1.0e+04 (exploding)"));
  CHECK(contains(dot, "mid\\n[2]\\ngrad norm 4.5e+00\""));
  CHECK(contains(dot, "unused\\n[1]\\ngrad norm: none"));
  CHECK(contains(dot, "#f7a1a1"));  // red for exploding
  CHECK(contains(dot, "#f2f2f2"));  // pale for vanishing
}

TEST_CASE("tools: docs/ops.md is up to date") {
  const std::string path = TAPE_SOURCE_DIR "/docs/ops.md";
  std::ifstream in(path, std::ios::binary);
  std::stringstream file;
  file << in.rdbuf();
  const std::string expected = ops_markdown();
  if (file.str() != expected)
    FAIL(path << " is out of date with the op registry; regenerate it with\n"
                   "    ninja -C build tools/tape-ops-doc && build/tools/tape-ops-doc > docs/ops.md");
  CHECK(contains(expected, "| `conv2d` |"));
}

namespace {
/// y = x, but backward scales the gradient by `factor` (a deliberately wrong op).
struct ScaledIdentityBackward final : Node {
  float factor = 1.f;
  const char* name() const override { return "ScaledIdentityBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override { return {g * factor}; }
};
Tensor scaled_identity(const Tensor& x, float factor) {
  Tensor y;
  {
    NoGradGuard ng;
    y = x.clone();
  }
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ScaledIdentityBackward>();
    node->factor = factor;
    record(y, std::move(node), {&x});
  }
  return y;
}
}  // namespace

TEST_CASE("gradcheck: max_elements_per_input samples deterministically") {
  Generator g(5);
  Tensor x = rand({6, 10}, g).requires_grad_();
  auto f = [](const std::vector<Tensor>& in) { return mean(in[0] * in[0]); };
  GradcheckOptions opt;
  opt.max_elements_per_input = 17;
  const GradcheckResult a = gradcheck(f, {x}, opt), b = gradcheck(f, {x}, opt);
  CHECK(a.ok);
  CHECK(a.checked == 17);
  CHECK(a.max_abs_err == b.max_abs_err);
  opt.max_elements_per_input = 0;
  CHECK(gradcheck(f, {x}, opt).checked == 60);
}

TEST_CASE("gradcheck: excuse_kinks counts a ReLU kink but still catches a wrong backward") {
  // Element 0 sits 5e-4 from ReLU's kink: the ±1e-3 central difference sees slope
  // 0.75, the analytic gradient is 1.
  Tensor x = tensor({5e-4f, 0.7f, -0.4f}, {3}, true);
  auto f = [](const std::vector<Tensor>& in) { return sum(relu(in[0]) * 2.f); };
  GradcheckOptions opt;
  const GradcheckResult strict = gradcheck(f, {x}, opt);
  CHECK_FALSE(strict.ok);
  CHECK(strict.kinks == 0);
  opt.excuse_kinks = true;
  const GradcheckResult lenient = gradcheck(f, {x}, opt);
  CHECK(lenient.ok);
  CHECK(lenient.kinks == 1);
  CHECK(lenient.checked == 3);

  // A 5 % error where the function is smooth is not excused.
  Tensor w = tensor({0.3f, -0.8f, 1.1f, 0.5f}, {4}, true);
  auto wrong = [](const std::vector<Tensor>& in) { return sum(tanh(scaled_identity(in[0], 1.05f))); };
  const GradcheckResult bad = gradcheck(wrong, {w}, opt);
  CHECK_FALSE(bad.ok);
  CHECK(bad.kinks == 0);
}
