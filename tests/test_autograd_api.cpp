// autograd::grad, create_graph, hooks, retain_grad, engine validation, anomaly mode.
#include <doctest/doctest.h>

#include <tape/tape.hpp>

#include "error_of.hpp"

using namespace tape;

TEST_CASE("create_graph: second derivative of x³ through mul") {
  Tensor x = tensor(std::vector<double>{1.5, -2.0}, {2}, true);
  Tensor y = (x * x * x).sum();
  auto g = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true);
  CHECK(g[0].requires_grad());
  CHECK(allclose(g[0], tensor(std::vector<double>{3 * 2.25, 3 * 4.0}, {2})));
  auto h = autograd::grad({g[0].sum()}, {x});
  CHECK(allclose(h[0], tensor(std::vector<double>{9.0, -12.0}, {2})));
  CHECK(!x.grad().defined());  // grad() does not touch .grad()
}
