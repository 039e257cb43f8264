#include <doctest/doctest.h>

#include <cmath>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Approx;
using doctest::Contains;

TEST_CASE("loss: cross_entropy against hand-computed values") {
  Tensor logits = tensor({1, 2, 3, 1, 1, 1}, {2, 3}, true);
  Tensor target = tensor(std::vector<int64_t>{2, 0}, {2});
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), lse1 = 1 + std::log(3.0);
  Tensor loss = cross_entropy(logits, target);
  CHECK(loss.item() == Approx(((lse0 - 3) + (lse1 - 1)) / 2));
  loss.backward();
  auto g = logits.grad().to_vector<float>();
  CHECK(g[2] == Approx((std::exp(3 - lse0) - 1) / 2));
  CHECK(g[0] == Approx(std::exp(1 - lse0) / 2));
  CHECK(g[3] == Approx((1.0 / 3 - 1) / 2));
  // probability targets equal to one-hot give the same loss
  CHECK(cross_entropy(logits, one_hot(target, 3)).item() == Approx(loss.item()));
  // equals nll_loss(log_softmax)
  CHECK(nll_loss(log_softmax(logits, 1), target).item() == Approx(loss.item()));
  // large logits stay finite
  CHECK(std::isfinite(cross_entropy(tensor({1000, -1000}, {1, 2}), tensor(std::vector<int64_t>{1}, {1})).item()));
}

TEST_CASE("loss: mse and one_hot") {
  CHECK(mse_loss(tensor({1, 2, 3}, {3}), tensor({1, 0, 0}, {3})).item() == Approx(13.0 / 3));
  Tensor oh = one_hot(tensor(std::vector<int64_t>{0, 2}, {2}), 3);
  CHECK(oh.to_vector<float>() == std::vector<float>{1, 0, 0, 0, 0, 1});
  CHECK(oh.dtype() == Dtype::Float32);
}

TEST_CASE("loss: errors name the op and the values") {
  Tensor logits = zeros({2, 3});
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor(std::vector<int64_t>{0, 3}, {2})),
                       "cross_entropy: target 3 at index 1 is out of range for 3 classes", Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor(std::vector<int64_t>{0}, {1})),
                       "cross_entropy: target of shape [1] does not match 2 samples (expected [2])", Error);
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({3}), tensor(std::vector<int64_t>{0}, {1})),
                       "cross_entropy: logits must be [N, C], got shape [3]", Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({2, 4})),
                       "cross_entropy: probability target of shape [2, 4] does not match logits of shape [2, 3]", Error);
  CHECK_THROWS_WITH_AS(mse_loss(zeros({2}), zeros({3})), "mse_loss: input of shape [2] and target of shape [3] differ",
                       Error);
  CHECK_THROWS_WITH_AS(one_hot(tensor(std::vector<int64_t>{5}, {1}), 3), Contains("target 5 at index 0 is out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(one_hot(zeros({2}), 3), "one_hot: labels must be an Int64 tensor", Error);
}

TEST_CASE("loss: cross_entropy, nll_loss and mse_loss in Float64") {
  // logits [[0, ln 3], [ln 2, ln 2]] → softmax rows [1/4, 3/4] and [1/2, 1/2]
  const double l3 = std::log(3.0), l2 = std::log(2.0);
  Tensor logits = tensor(std::vector<double>{0, l3, l2, l2}, {2, 2}, true);
  Tensor target = tensor(std::vector<int64_t>{1, 0}, {2});
  Tensor loss = cross_entropy(logits, target);
  CHECK(loss.dtype() == Dtype::Float64);
  CHECK(loss.item<double>() == Approx(-(std::log(0.75) + std::log(0.5)) / 2).epsilon(1e-15));
  loss.backward();
  // dx = (softmax − one_hot) / N
  const auto g = logits.grad().to_vector<double>();
  CHECK(logits.grad().dtype() == Dtype::Float64);
  CHECK(g[0] == Approx(0.125).epsilon(1e-15));
  CHECK(g[1] == Approx(-0.125).epsilon(1e-15));
  CHECK(g[2] == Approx(-0.25).epsilon(1e-15));
  CHECK(g[3] == Approx(0.25).epsilon(1e-15));

  // probability targets of the logits' dtype; one-hot gives the index loss
  Tensor probs = tensor(std::vector<double>{0, 1, 1, 0}, {2, 2});
  CHECK(cross_entropy(logits, probs).item<double>() == Approx(loss.item<double>()).epsilon(1e-15));
  Tensor soft = tensor(std::vector<double>{0.5, 0.5, 0.25, 0.75}, {2, 2}, false);
  Tensor x2 = logits.detach().requires_grad_();
  Tensor ls = cross_entropy(x2, soft);
  CHECK(ls.item<double>() == Approx(-(0.5 * std::log(0.25) + 0.5 * std::log(0.75) + std::log(0.5)) / 2).epsilon(1e-15));
  ls.backward();
  CHECK(x2.grad().to_vector<double>()[0] == Approx((0.25 - 0.5) / 2).epsilon(1e-15));

  // nll_loss of log_softmax is the same loss; its gradient is −1/N at the targets
  Tensor lp = log_softmax(logits.detach(), 1).requires_grad_();
  Tensor nll = nll_loss(lp, target);
  CHECK(nll.dtype() == Dtype::Float64);
  CHECK(nll.item<double>() == Approx(loss.item<double>()).epsilon(1e-15));
  nll.backward();
  CHECK(lp.grad().to_vector<double>() == std::vector<double>{0, -0.5, -0.5, 0});

  // a difference Float32 cannot hold: (1 + 1e-9 − 1)² = 1e-18
  Tensor a = tensor(std::vector<double>{1 + 1e-9, 3}, {2}), b = tensor(std::vector<double>{1, 3}, {2});
  CHECK(mse_loss(a, b).dtype() == Dtype::Float64);
  CHECK(mse_loss(a, b).item<double>() == Approx(0.5e-18).epsilon(1e-6));
  CHECK(mse_loss(tensor(std::vector<double>{1, 2, 3}, {3}), tensor(std::vector<double>{1, 0, 0}, {3})).item<double>() ==
        Approx(13.0 / 3).epsilon(1e-15));
}

TEST_CASE("loss: mixed Float32/Float64 losses are errors naming both dtypes") {
  Tensor logits = zeros({2, 2}, Dtype::Float64);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, zeros({2, 2})),
                       "cross_entropy: probability target has dtype Float32 but the input is Float64 (convert one "
                       "with .to(dtype))",
                       Error);
  CHECK_THROWS_WITH_AS(mse_loss(zeros({2}), zeros({2}, Dtype::Float64)),
                       "mse_loss: target has dtype Float64 but the input is Float32 (convert one with .to(dtype))", Error);
  // one_hot stays Float32 whatever the use
  CHECK(one_hot(tensor(std::vector<int64_t>{1}, {1}), 2).dtype() == Dtype::Float32);
}

TEST_CASE("dropout: inverted scaling, identity in eval, reproducible from the seed") {
  Tensor x = ones({1000});
  CHECK(dropout(x, 0.5f, false).is_same(x));
  Generator g(5);
  auto v = dropout(x, 0.25f, true, g).to_vector<float>();
  int zeros_ = 0;
  double s = 0;
  for (float f : v) {
    CHECK((f == 0.f || f == Approx(1 / 0.75f)));
    zeros_ += f == 0.f;
    s += f;
  }
  CHECK(zeros_ > 200);
  CHECK(zeros_ < 300);
  CHECK(s / 1000 == Approx(1.0).epsilon(0.1));  // expectation preserved
  Generator g1(5);
  CHECK(dropout(x, 0.25f, true, g1).to_vector<float>() == v);
  CHECK(dropout(x, 1.f, true).to_vector<float>() == std::vector<float>(1000, 0.f));
  CHECK_THROWS_WITH_AS(dropout(x, 1.5f, true), "dropout: probability must be in [0, 1], got 1.5", Error);
  Tensor xr = ones({4}).requires_grad_();
  Generator g2(1);
  Tensor y = dropout(xr, 0.5f, true, g2);
  y.sum().backward();
  CHECK(xr.grad().to_vector<float>() == y.detach().to_vector<float>());
}
