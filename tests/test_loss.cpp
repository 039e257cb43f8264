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
