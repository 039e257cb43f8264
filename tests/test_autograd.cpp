#include <doctest/doctest.h>

#include <cmath>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

TEST_CASE("autograd: x*x*x accumulates to 3x^2") {
  Tensor x = tensor({2.f, -1.f}, {2}, true);
  Tensor y = (x * x * x).sum();
  y.backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{12.f, 3.f});
}

TEST_CASE("autograd: a reused tensor sums the gradients of all its uses") {
  Tensor w = tensor({3.f}, {1}, true);
  Tensor a = w * 2.f;
  Tensor y = (a + a * w + exp(w * 0.f)).sum();  // d/dw: 2 + 4w = 14
  y.backward();
  CHECK(w.grad().item() == doctest::Approx(14.f));
}

TEST_CASE("autograd: two backward calls with retain_graph accumulate") {
  Tensor x = tensor({1.f, 2.f}, {2}, true);
  Tensor y = (x * x).sum();
  y.backward({}, true);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2.f, 4.f});
  y.backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{4.f, 8.f});
  CHECK_THROWS_WITH_AS(y.backward(), Contains("a second time"), Error);
}

TEST_CASE("autograd: backward on a freed graph throws a clear error") {
  Tensor x = tensor({1.f}, {1}, true);
  Tensor y = (x.exp() * 2.f).sum();
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), Contains("saved tensors were already freed"), Error);
}

TEST_CASE("autograd: NoGradGuard and detach record nothing") {
  Tensor x = tensor({1.f, 2.f}, {2}, true);
  {
    NoGradGuard g;
    CHECK(!grad_enabled());
    Tensor y = x * 2.f;
    CHECK(!y.requires_grad());
    CHECK(!y.grad_fn());
  }
  CHECK(grad_enabled());
  Tensor d = x.detach();
  CHECK(!d.requires_grad());
  CHECK(d.impl()->storage == x.impl()->storage);
  Tensor y = (x * d).sum();  // d is a constant
  y.backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>{1.f, 2.f});
}

TEST_CASE("autograd: grad flows only to inputs that require it") {
  Tensor a = tensor({1.f, 2.f}, {2}, true);
  Tensor b = tensor({3.f, 4.f}, {2});
  (a * b).sum().backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3.f, 4.f});
  CHECK(!b.grad().defined());
}

TEST_CASE("autograd: in-place ops and the version counter") {
  Tensor x = tensor({1.f, 2.f}, {2}, true);
  Tensor w = tensor({1.f, 1.f}, {2});
  Tensor y = (x * w).sum();  // saves w (version 0)
  w.mul_(3.f);               // version 1
  CHECK(w.version() == 1);
  CHECK_THROWS_WITH_AS(
      y.backward(),
      "backward of MulBackward: a tensor of shape [2] saved for the gradient was modified by an in-place operation: "
      "it is at version 1, expected version 0 (clone() it before modifying, or modify a copy)",
      Error);

  // writing into a tensor that requires grad while recording is refused
  CHECK_THROWS_WITH_AS(x.add_(ones({2})), Contains("add_: in-place operation on a tensor of shape [2] that requires grad"),
                       Error);
  {
    NoGradGuard g;
    x.add_(ones({2}), 2.f);
  }
  CHECK(x.to_vector<float>() == std::vector<float>{3.f, 4.f});
  Tensor z = zeros({3});
  z.add_(1.f).mul_(4.f);
  CHECK(z.to_vector<float>() == std::vector<float>{4, 4, 4});
  z.copy_(tensor({1, 2, 3}, {3}));
  CHECK(z.to_vector<float>() == std::vector<float>{1, 2, 3});
  z.zero_();
  CHECK(z.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK_THROWS_WITH_AS(z.copy_(ones({2})), Contains("copy_: source shape [2] does not match destination shape [3]"),
                       Error);
}

TEST_CASE("autograd: modifying through a detached alias is caught too") {
  Tensor x = tensor({0.5f, 1.f}, {2}, true);
  Tensor y = x.sigmoid();  // saves its output
  Tensor s = y.sum();
  y.detach().mul_(2.f);
  CHECK_THROWS_WITH_AS(s.backward(), Contains("SigmoidBackward"), Error);
}

TEST_CASE("autograd: a 100 000-node chain builds, runs and frees without recursion") {
  Tensor x = tensor({1.f}, {1}, true);
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0f;
  y.sum().backward();
  CHECK(x.grad().item() == 1.f);
  const size_t in_use = allocator_stats().bytes_in_use;
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = z + 0.f;
  CHECK(allocator_stats().bytes_in_use > in_use);  // the chain holds its tensors
  z = Tensor();  // iterative teardown of an unused chain: no stack overflow, all freed
  CHECK(allocator_stats().bytes_in_use == in_use);
}

TEST_CASE("autograd: backward() errors") {
  Tensor x = tensor({1.f, 2.f}, {2}, true);
  CHECK_THROWS_WITH_AS((x * 2.f).backward(),
                       "backward(): grad can be implicitly created only for scalar outputs, got shape [2]; pass a "
                       "gradient of that shape",
                       Error);
  CHECK_THROWS_WITH_AS(ones({1}).backward(), Contains("does not require grad"), Error);
  CHECK_THROWS_WITH_AS((x * 2.f).backward(ones({3})), Contains("gradient shape [3] does not match tensor shape [2]"),
                       Error);
  (x * 2.f).backward(tensor({1.f, 0.5f}, {2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2.f, 1.f});
}

TEST_CASE("autograd: a leaf takes part in many graphs, one after another") {
  Tensor w = tensor({2.f}, {1}, true);
  for (int i = 0; i < 3; ++i) (w * w).sum().backward();
  CHECK(w.grad().item() == 12.f);
}

TEST_CASE("autograd: leaf gradients are independent buffers") {
  Tensor a = tensor({1.f}, {1}, true), b = tensor({2.f}, {1}, true);
  (a + b).sum().backward();
  (a + b).sum().backward();
  CHECK(a.grad().item() == 2.f);
  CHECK(b.grad().item() == 2.f);
  a.set_grad({});
  CHECK(!a.grad().defined());
}

TEST_CASE("autograd: an elementwise backward that writes over its incoming gradient corrupts nothing shared") {
  Generator gen(5);
  Tensor x = (rand({64, 50}, gen) - 0.5f).requires_grad_();
  Tensor g = rand({64, 50}, gen);
  const auto g_before = g.to_vector<float>(), xv = x.to_vector<float>();

  // the caller's gradient is shared with the caller: it must come back untouched
  relu(x).backward(g);
  CHECK(g.to_vector<float>() == g_before);
  const auto dx1 = x.grad().to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(dx1[i] == (xv[i] > 0 ? g_before[i] : 0.f));

  // one gradient buffer reaches two consumers (add's backward passes it to both)
  x.set_grad({});
  Tensor y = relu(x * 2.f) + tanh(x * 2.f);
  y.backward(g);
  const auto dx2 = x.grad().to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) {
    const float t = std::tanh(2.f * xv[i]);
    const float want = 2.f * g_before[i] * ((xv[i] > 0 ? 1.f : 0.f) + (1.f - t * t));
    CHECK(dx2[i] == doctest::Approx(want).epsilon(1e-5));
  }
  CHECK(g.to_vector<float>() == g_before);
}
