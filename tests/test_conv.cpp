#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

namespace {

/// Direct convolution: y[n,o,i,j] = b[o] + Σ_{c,a,e} x[n,c,i·s+a−p,j·s+e−p]·w[o,c,a,e].
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), KH = w.size(2), KW = w.size(3);
  const int64_t HO = (H + 2 * p - KH) / s + 1, WO = (W + 2 * p - KW) / s + 1;
  const auto xv = x.to_vector<float>(), wv = w.to_vector<float>();
  const auto bv = b.defined() ? b.to_vector<float>() : std::vector<float>(size_t(O), 0.f);
  std::vector<float> y(size_t(N * O * HO * WO));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < HO; ++i)
        for (int64_t j = 0; j < WO; ++j) {
          double acc = bv[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t a = 0; a < KH; ++a)
              for (int64_t e = 0; e < KW; ++e) {
                const int64_t h = i * s + a - p, ww = j * s + e - p;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                acc += double(xv[size_t(((n * C + c) * H + h) * W + ww)]) *
                       wv[size_t(((o * C + c) * KH + a) * KW + e)];
              }
          y[size_t(((n * O + o) * HO + i) * WO + j)] = float(acc);
        }
  return tensor(y, {N, O, HO, WO});
}

/// Direct max pooling over k×k windows with stride s (no padding, floor mode).
Tensor naive_pool(const Tensor& x, int64_t k, int64_t s) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t HO = (H - k) / s + 1, WO = (W - k) / s + 1;
  const auto xv = x.to_vector<float>();
  std::vector<float> y(size_t(N * C * HO * WO));
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < HO; ++i)
      for (int64_t j = 0; j < WO; ++j) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < k; ++a)
          for (int64_t e = 0; e < k; ++e) m = std::max(m, xv[size_t((nc * H + i * s + a) * W + j * s + e)]);
        y[size_t((nc * HO + i) * WO + j)] = m;
      }
  return tensor(y, {N, C, HO, WO});
}

Tensor uniform(const Shape& s, Generator& g) { return rand(s, g) * 2.f - 1.f; }

}  // namespace

TEST_CASE("conv2d: forward matches a direct convolution loop") {
  struct Case {
    Shape x, w;
    int64_t stride, padding;
    bool bias;
  };
  std::vector<Case> cases{
      {{2, 3, 7, 7}, {4, 3, 3, 3}, 1, 1, true},     {{3, 2, 9, 8}, {5, 2, 3, 3}, 2, 0, false},
      {{2, 3, 10, 11}, {4, 3, 5, 3}, 2, 2, true},   {{4, 1, 28, 28}, {6, 1, 5, 5}, 1, 0, true},
      {{2, 6, 12, 12}, {16, 6, 5, 5}, 1, 0, true},  {{1, 17, 6, 6}, {33, 17, 1, 1}, 1, 0, true},
      {{2, 4, 5, 5}, {3, 4, 5, 5}, 3, 1, false},
  };
  Generator g(42);
  for (int r = 0; r < 6; ++r) {  // random shapes
    const int64_t k = 1 + int64_t(g.below(4)), p = int64_t(g.below(3));
    const auto up_to = [&](int64_t n) { return int64_t(g.below(uint64_t(n))); };
    cases.push_back({{1 + up_to(3), 1 + up_to(5), k + up_to(8), k + up_to(8)},
                     {1 + up_to(8), 0, k, k},
                     1 + up_to(3),
                     p,
                     up_to(2) == 1});
    cases.back().w[1] = cases.back().x[1];
  }
  for (const Case& c : cases) {
    INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " stride ", c.stride, " padding ", c.padding);
    Tensor x = uniform(c.x, g), w = uniform(c.w, g), b = c.bias ? uniform({c.w[0]}, g) : Tensor();
    Tensor y = conv2d(x, w, b, c.stride, c.padding);
    Tensor want = naive_conv(x, w, b, c.stride, c.padding);
    REQUIRE(y.shape() == want.shape());
    CHECK(max_abs_diff(y, want) < 1e-4f);
  }
}

TEST_CASE("conv2d: non-contiguous input gives the same result") {
  Generator g(5);
  Tensor xt = uniform({2, 3, 8, 6}, g);
  Tensor x = transpose(xt, 2, 3);  // [2, 3, 6, 8] strided view
  Tensor w = uniform({4, 3, 3, 3}, g), b = uniform({4}, g);
  CHECK(max_abs_diff(conv2d(x, w, b, 1, 1), naive_conv(x.contiguous(), w, b, 1, 1)) < 1e-4f);
}

TEST_CASE("max_pool2d: forward matches a direct loop") {
  Generator g(7);
  struct Case {
    Shape x;
    int64_t k, s;
  };
  for (const Case& c : std::vector<Case>{{{2, 3, 8, 8}, 2, -1},
                                         {{2, 6, 24, 24}, 2, -1},
                                         {{1, 2, 7, 9}, 3, 2},
                                         {{3, 1, 5, 5}, 2, 1},
                                         {{2, 2, 7, 7}, 2, -1},  // odd size: last row/column dropped
                                         {{1, 1, 4, 4}, 4, -1}}) {
    INFO("x ", shape_str(c.x), " kernel ", c.k, " stride ", c.s);
    Tensor x = uniform(c.x, g);
    Tensor y = max_pool2d(x, c.k, c.s);
    Tensor want = naive_pool(x, c.k, c.s == -1 ? c.k : c.s);
    REQUIRE(y.shape() == want.shape());
    CHECK(max_abs_diff(y, want) == 0.f);
  }
}

TEST_CASE("max_pool2d: backward routes the gradient to the arg max") {
  Tensor x = tensor({1, 5, 2, 0,  //
                     3, 4, 8, 7,  //
                     9, 0, 1, 2,  //
                     6, 2, 3, 4},
                    {1, 1, 4, 4}, true);
  Tensor y = max_pool2d(x, 2);
  CHECK(y.to_vector<float>() == std::vector<float>{5, 8, 9, 4});
  CHECK(y.grad_fn()->name() == std::string("MaxPool2dBackward"));
  y.backward(tensor({1, 2, 3, 4}, {1, 1, 2, 2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4});

  // overlapping windows accumulate: the centre 9 is the max of all four 2×2 windows
  Tensor z = tensor({1, 2, 3, 4, 9, 5, 6, 7, 8}, {1, 1, 3, 3}, true);
  max_pool2d(z, 2, 1).sum().backward();
  CHECK(z.grad().to_vector<float>() == std::vector<float>{0, 0, 0, 0, 4, 0, 0, 0, 0});
}

TEST_CASE("conv2d: backward matches finite differences") {
  Generator g(11);
  struct Case {
    Shape x, w;
    int64_t stride, padding;
    bool bias;
  };
  for (const Case& c : std::vector<Case>{{{2, 2, 5, 6}, {3, 2, 3, 3}, 2, 1, true},
                                         {{1, 3, 6, 5}, {2, 3, 2, 3}, 1, 0, false},
                                         {{2, 1, 6, 6}, {2, 1, 3, 3}, 3, 2, true}}) {
    INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " stride ", c.stride, " padding ", c.padding);
    // weights in ±0.5 keep |y| small: float32 rounding of y is the finite differences' noise
    std::vector<Tensor> in{uniform(c.x, g).requires_grad_(), (uniform(c.w, g) * 0.5f).requires_grad_()};
    if (c.bias) in.push_back((uniform({c.w[0]}, g) * 0.5f).requires_grad_());
    const int64_t s = c.stride, p = c.padding;
    GradcheckResult r = gradcheck(
        [s, p](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), s, p); }, in);
    INFO(r.message);
    CHECK(r.ok);
  }
  // the gradient also flows through conv → max_pool → conv
  std::vector<Tensor> in{uniform({1, 2, 8, 8}, g).requires_grad_(), uniform({3, 2, 3, 3}, g).requires_grad_(),
                         uniform({2, 3, 2, 2}, g).requires_grad_()};
  GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& t) { return conv2d(max_pool2d(conv2d(t[0], t[1], {}, 1, 1), 2), t[2]); }, in);
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("conv2d: an input without requires_grad gets no gradient, weight and bias do") {
  Generator g(3);
  Tensor x = uniform({2, 3, 6, 6}, g);
  Tensor w = uniform({4, 3, 3, 3}, g).requires_grad_(), b = uniform({4}, g).requires_grad_();
  Tensor y = conv2d(x, w, b, 1, 0);
  CHECK(y.requires_grad());
  CHECK(y.grad_fn()->name() == std::string("Conv2dBackward"));
  y.sum().backward();
  CHECK(!x.grad().defined());
  REQUIRE(w.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(w.grad().shape() == w.shape());
  // db[o] = Σ_{n,i,j} 1 = N·H'·W'
  CHECK(b.grad().to_vector<float>() == std::vector<float>(4, 2.f * 4 * 4));
  // dw[o,c,a,e] = Σ_{n,i,j} x[n,c,i+a,j+e] for an all-ones upstream gradient
  const auto xv = x.to_vector<float>(), dw = w.grad().to_vector<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t a = 0; a < 3; ++a)
      for (int64_t e = 0; e < 3; ++e) {
        double want = 0;
        for (int64_t n = 0; n < 2; ++n)
          for (int64_t i = 0; i < 4; ++i)
            for (int64_t j = 0; j < 4; ++j) want += xv[size_t(((n * 3 + c) * 6 + i + a) * 6 + j + e)];
        for (int64_t o = 0; o < 4; ++o)
          CHECK(dw[size_t(((o * 3 + c) * 3 + a) * 3 + e)] == doctest::Approx(want).epsilon(1e-4));
      }

  // only the bias requires grad: still gets it; the input and weight do not
  Tensor w2 = uniform({4, 3, 3, 3}, g);
  Tensor b2 = zeros({4}).requires_grad_();
  conv2d(x, w2, b2).sum().backward();
  CHECK(b2.grad().to_vector<float>() == std::vector<float>(4, 32.f));
  CHECK(!w2.grad().defined());

  // only the input requires grad
  Tensor x3 = uniform({1, 3, 5, 5}, g).requires_grad_();
  Tensor w3 = uniform({2, 3, 3, 3}, g);
  conv2d(x3, w3, {}, 1, 1).sum().backward();
  CHECK(x3.grad().shape() == x3.shape());
  CHECK(!w3.grad().defined());
}

TEST_CASE("conv2d & max_pool2d: the no-grad (inference) path gives the training path's values") {
  Generator g(9);
  Tensor x = uniform({3, 6, 12, 12}, g), w = uniform({16, 6, 5, 5}, g), b = uniform({16}, g);
  Tensor xg = x.detach().requires_grad_(), wg = w.detach().requires_grad_(), bg = b.detach().requires_grad_();
  Tensor train = max_pool2d(conv2d(xg, wg, bg, 1, 2), 2);
  REQUIRE(train.requires_grad());
  Tensor infer;
  {
    NoGradGuard no_grad;
    infer = max_pool2d(conv2d(xg, wg, bg, 1, 2), 2);
  }
  CHECK(!infer.requires_grad());
  CHECK(!infer.grad_fn());
  CHECK(max_abs_diff(train, infer) < 1e-5f);
  CHECK(max_abs_diff(conv2d(x, w, b, 1, 2), naive_conv(x, w, b, 1, 2)) < 1e-4f);  // no input requires grad
}

TEST_CASE("conv2d & max_pool2d: LeNet-5 shapes") {
  Generator g(1);
  const int64_t n = 8;
  Tensor x = rand({n, 1, 28, 28}, g);
  Tensor w1 = uniform({6, 1, 5, 5}, g).requires_grad_(), b1 = zeros({6}).requires_grad_();
  Tensor w2 = (uniform({16, 6, 5, 5}, g) * 0.2f).requires_grad_(), b2 = zeros({16}).requires_grad_();
  Tensor c1 = conv2d(x, w1, b1);
  CHECK(c1.shape() == Shape{n, 6, 24, 24});
  Tensor p1 = max_pool2d(relu(c1), 2);
  CHECK(p1.shape() == Shape{n, 6, 12, 12});
  Tensor c2 = conv2d(p1, w2, b2);
  CHECK(c2.shape() == Shape{n, 16, 8, 8});
  Tensor p2 = max_pool2d(relu(c2), 2);
  CHECK(p2.shape() == Shape{n, 16, 4, 4});
  CHECK(flatten(p2, 1).shape() == Shape{n, 256});
  p2.sum().backward();
  for (const Tensor* t : {&w1, &b1, &w2, &b2}) {
    REQUIRE(t->grad().defined());
    CHECK(t->grad().shape() == t->shape());
  }
  CHECK(!x.grad().defined());
}

TEST_CASE("conv2d & max_pool2d: backward after an in-place change of a saved input throws") {
  Generator g(2);
  Tensor x = uniform({1, 2, 5, 5}, g), w = uniform({3, 2, 3, 3}, g).requires_grad_();
  Tensor y = conv2d(x, w);
  x.add_(1.f);  // x needs no grad, but conv saved it for dw
  CHECK_THROWS_WITH_AS(y.sum().backward(), Contains("Conv2dBackward"), Error);

  Tensor xr = uniform({1, 1, 4, 4}, g).requires_grad_();
  Tensor h = xr * 2.f;
  Tensor z = max_pool2d(h, 2);
  {
    NoGradGuard no_grad;
    h.add_(1.f);  // the arg max saved in the workspace no longer describes h
  }
  CHECK_THROWS_WITH_AS(z.sum().backward(), Contains("MaxPool2dBackward"), Error);
}

TEST_CASE("conv2d: errors name the op and the shapes") {
  Tensor x = ones({2, 3, 8, 8}), w = ones({6, 3, 5, 5});
  CHECK_THROWS_WITH_AS(conv2d(ones({3, 8, 8}), w), "conv2d: input must be 4-D [N, C, H, W], got shape [3, 8, 8]",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, ones({6, 3, 5})), "conv2d: weight must be 4-D [O, C, kh, kw], got shape [6, 3, 5]",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, ones({6, 1, 5, 5})),
                       "conv2d: input has 3 channels but weight of shape [6, 1, 5, 5] expects 1", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, ones({5})),
                       "conv2d: bias of shape [5] does not match weight of shape [6, 3, 5, 5] (expected [6])", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, ones({6, 1})),
                       "conv2d: bias of shape [6, 1] does not match weight of shape [6, 3, 5, 5] (expected [6])",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(ones({1, 3, 4, 8}), w),
                       "conv2d: kernel 5x5 is larger than the padded input 4x8 (input shape [1, 3, 4, 8], padding 0)",
                       Error);
  CHECK_NOTHROW(conv2d(ones({1, 3, 4, 8}), w, {}, 1, 1));  // padded to 6x10
  CHECK_THROWS_WITH_AS(conv2d(x, w, {}, 0), "conv2d: stride must be >= 1, got 0", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, {}, 1, -1), "conv2d: padding must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(conv2d(zeros({2, 3, 8, 8}, Dtype::Int64), w),
                       "conv2d: input must be Float32 or Float64, got Int64 tensor of shape [2, 3, 8, 8]", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({6, 3, 5, 5}, Dtype::Int64)),
                       "conv2d: weight must be Float32 or Float64, got Int64 tensor of shape [6, 3, 5, 5]", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, zeros({6}, Dtype::Int64)),
                       "conv2d: bias must be Float32 or Float64, got Int64 tensor of shape [6]", Error);
}

TEST_CASE("max_pool2d: errors name the op and the shapes") {
  Tensor x = ones({2, 3, 4, 6});
  CHECK_THROWS_WITH_AS(max_pool2d(ones({3, 4, 4}), 2),
                       "max_pool2d: input must be 4-D [N, C, H, W], got shape [3, 4, 4]", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 0), "max_pool2d: kernel must be >= 1, got 0", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 2, 0), "max_pool2d: stride must be >= 1 (or -1 for stride = kernel), got 0",
                       Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 5),
                       "max_pool2d: kernel 5x5 is larger than the input 4x6 (input shape [2, 3, 4, 6])", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(zeros({2, 3, 4, 4}, Dtype::Int64), 2),
                       "max_pool2d: input must be Float32 or Float64, got Int64 tensor of shape [2, 3, 4, 4]", Error);
}

TEST_CASE("conv2d: a batch run in slices gives the direct loops' values and gradients") {
  // 450 LeNet-5 conv1 images: several oneDNN calls, the nChw16c → NCHW loop,
  // and weight gradients summed over slices
  Generator g(11);
  const int64_t N = 450, O = 6, H = 28, K = 5, HO = H - K + 1;
  Tensor x = uniform({N, 1, H, H}, g).requires_grad_();
  Tensor w = uniform({O, 1, K, K}, g).requires_grad_(), b = uniform({O}, g).requires_grad_();
  Tensor up = uniform({N, O, HO, HO}, g);
  Tensor y = conv2d(x, w, b);
  CHECK(max_abs_diff(y, naive_conv(x, w, b, 1, 0)) < 1e-4f);
  (y * up).sum().backward();

  const auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), uv = up.to_vector<float>();
  // exact sums, and sums of |terms| (the scale of float rounding in the result)
  std::vector<double> dw(size_t(O * K * K), 0.0), db(size_t(O), 0.0), dx(size_t(N * H * H), 0.0);
  std::vector<double> dw_abs(dw.size(), 0.0), db_abs(db.size(), 0.0), dx_abs(dx.size(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < HO; ++i)
        for (int64_t j = 0; j < HO; ++j) {
          const double gv = uv[size_t(((n * O + o) * HO + i) * HO + j)];
          db[size_t(o)] += gv;
          db_abs[size_t(o)] += std::abs(gv);
          for (int64_t a = 0; a < K; ++a)
            for (int64_t e = 0; e < K; ++e) {
              const size_t wi = size_t((o * K + a) * K + e), xi = size_t((n * H + i + a) * H + j + e);
              dw[wi] += gv * xv[xi];
              dw_abs[wi] += std::abs(gv * xv[xi]);
              dx[xi] += gv * wv[wi];
              dx_abs[xi] += std::abs(gv * wv[wi]);
            }
        }
  // a missing or doubled slice would be off by a third of the scale
  const auto close = [](const Tensor& got, const std::vector<double>& want, const std::vector<double>& scale) {
    const auto v = got.to_vector<float>();
    double worst = 0;
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::abs(v[i] - want[i]) / (1e-3 + scale[i]));
    return worst < 1e-5;
  };
  CHECK(close(w.grad(), dw, dw_abs));
  CHECK(close(b.grad(), db, db_abs));
  CHECK(close(x.grad(), dx, dx_abs));
}

TEST_CASE("relu → max_pool2d keeps no activation alive: only ReLU's sign bytes and the pool's arg max") {
  Generator g(4);
  Tensor w = uniform({6, 1, 5, 5}, g).requires_grad_();
  Tensor x = uniform({64, 1, 28, 28}, g);
  Tensor c = conv2d(x, w);
  Tensor r = relu(c);
  const size_t activation = size_t(r.numel()) * sizeof(float);
  Tensor p = max_pool2d(r, 2);
  const size_t before = allocator_stats().bytes_in_use;
  c = Tensor();
  r = Tensor();  // neither ReLU's node nor the pool's holds it
  CHECK(allocator_stats().bytes_in_use + 2 * activation <= before);
  // and the gradient is still right: compare with a graph that keeps everything
  p.sum().backward();
  const auto dw = w.grad().to_vector<float>();
  Tensor w2 = w.detach().clone().requires_grad_();
  Tensor r2 = relu(conv2d(x, w2));
  max_pool2d(r2, 2).sum().backward();
  CHECK(w2.grad().to_vector<float>() == dw);
}

TEST_CASE("max_pool2d: backward still notices an in-place change of an input it no longer holds") {
  Generator g(6);
  Tensor xr = uniform({1, 1, 4, 4}, g).requires_grad_();
  Tensor z = max_pool2d(relu(xr), 2);
  // the relu output is gone (only the pool read it): its watch has expired, and
  // backward must neither throw nor lose the arg max
  z.sum().backward();
  const auto xv = xr.to_vector<float>(), dx = xr.grad().to_vector<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      size_t best = size_t((2 * i) * 4 + 2 * j);
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t e = 0; e < 2; ++e) {
          const size_t k = size_t((2 * i + a) * 4 + 2 * j + e);
          if (std::max(xv[k], 0.f) > std::max(xv[best], 0.f)) best = k;
        }
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t e = 0; e < 2; ++e) {
          const size_t k = size_t((2 * i + a) * 4 + 2 * j + e);
          CHECK(dx[k] == (k == best && xv[k] > 0 ? 1.f : 0.f));
        }
    }

  // while the input is alive, an in-place change is still caught
  Tensor h = xr * 2.f;
  Tensor z2 = max_pool2d(h, 2);
  {
    NoGradGuard no_grad;
    h.add_(1.f);
  }
  CHECK_THROWS_WITH_AS(z2.sum().backward(), Contains("modified by an in-place operation"), Error);
}

// --- Float64: the reference paths (im2col + dgemm, the index pool) ----------------

namespace {

/// f(inputs)·v's gradient by central differences (step 1e-6) against backward, for
/// every element of every Float64 input that requires grad: the max relative error.
double fd_error64(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in, Generator& g) {
  Tensor v = uniform(f(in).shape(), g).to(Dtype::Float64);
  for (auto& t : in) t.set_grad({});
  (f(in) * v).sum().backward();
  double worst = 0;
  NoGradGuard no_grad;
  for (const Tensor& t : in) {
    if (!t.requires_grad()) continue;
    const auto analytic = t.grad().to_vector<double>();
    double* p = t.detach().data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double x0 = p[i], h = 1e-6;
      p[i] = x0 + h;
      const double up = (f(in) * v).sum().item<double>();
      p[i] = x0 - h;
      const double down = (f(in) * v).sum().item<double>();
      p[i] = x0;
      const double numeric = (up - down) / (2 * h);
      worst = std::max(worst, std::fabs(numeric - analytic[size_t(i)]) / (1 + std::fabs(numeric)));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("conv2d: Float64 forward by hand, and against the Float32 path") {
  // a 3×3 image of 1..9, a 2×2 kernel of ones, bias 0.5: window sums + 0.5
  Tensor x = tensor(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = ones({1, 1, 2, 2}, Dtype::Float64), b = full({1}, 0.5, Dtype::Float64);
  Tensor y = conv2d(x, w, b);
  CHECK(y.dtype() == Dtype::Float64);
  CHECK(y.to_vector<double>() == std::vector<double>{12.5, 16.5, 24.5, 28.5});
  // padding 1, stride 2: the four windows hold 1, 2, 2 and 4 of the image's elements
  CHECK(conv2d(x, w, Tensor(), 2, 1).to_vector<double>() == std::vector<double>{1, 5, 11, 28});

  Generator g(5);
  struct Case {
    Shape x, w;
    int64_t stride, padding;
  };
  for (const Case& c : std::vector<Case>{{{2, 3, 7, 7}, {4, 3, 3, 3}, 2, 1},
                                         {{1, 2, 6, 5}, {3, 2, 2, 3}, 1, 0},
                                         {{3, 1, 8, 8}, {2, 1, 5, 5}, 1, 2}}) {
    INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " stride ", c.stride, " padding ", c.padding);
    Tensor x32 = uniform(c.x, g), w32 = uniform(c.w, g), b32 = uniform({c.w[0]}, g), g32 = uniform({1}, g);
    Tensor y32 = conv2d(x32, w32, b32, c.stride, c.padding);
    Tensor x64 = x32.to(Dtype::Float64).requires_grad_(), w64 = w32.to(Dtype::Float64).requires_grad_(),
           b64 = b32.to(Dtype::Float64).requires_grad_();
    Tensor y64 = conv2d(x64, w64, b64, c.stride, c.padding);
    REQUIRE(y64.shape() == y32.shape());
    CHECK(max_abs_diff(y64, y32) < 1e-5);
    CHECK(max_abs_diff(y64, naive_conv(x32, w32, b32, c.stride, c.padding)) < 1e-5);

    // backward: the same upstream gradient through both paths
    Tensor gy = uniform(y32.shape(), g);
    Tensor xr = x32.detach().requires_grad_(), wr = w32.detach().requires_grad_(), br = b32.detach().requires_grad_();
    conv2d(xr, wr, br, c.stride, c.padding).backward(gy);
    y64.backward(gy.to(Dtype::Float64));
    CHECK(x64.grad().dtype() == Dtype::Float64);
    CHECK(max_abs_diff(x64.grad(), xr.grad()) < 1e-5);
    CHECK(max_abs_diff(w64.grad(), wr.grad()) < 1e-5);
    CHECK(max_abs_diff(b64.grad(), br.grad()) < 1e-5);
  }
}

TEST_CASE("conv2d: Float64 backward matches central differences to 1e-7") {
  Generator g(13);
  std::vector<Tensor> in{uniform({2, 2, 5, 6}, g).to(Dtype::Float64).requires_grad_(),
                         uniform({3, 2, 3, 3}, g).to(Dtype::Float64).requires_grad_(),
                         uniform({3}, g).to(Dtype::Float64).requires_grad_()};
  CHECK(fd_error64([](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 2, 1); }, in, g) < 1e-7);
  // an input that needs no gradient gets none; the weight still does
  Tensor x = uniform({1, 2, 4, 4}, g).to(Dtype::Float64), w = uniform({1, 2, 2, 2}, g).to(Dtype::Float64);
  w.requires_grad_();
  conv2d(x, w).sum().backward();
  CHECK_FALSE(x.grad().defined());
  // dw[o,c,a,e] = Σ_{i,j} x[c, i+a, j+e] for an all-ones upstream gradient
  const auto xv = x.to_vector<double>();
  double want = 0;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) want += xv[size_t(i * 4 + j)];
  CHECK(w.grad().to_vector<double>()[0] == doctest::Approx(want).epsilon(1e-14));
}

TEST_CASE("max_pool2d: Float64 forward and backward against the Float32 path") {
  Generator g(17);
  Tensor x32 = uniform({2, 3, 7, 9}, g);
  Tensor x64 = x32.to(Dtype::Float64).requires_grad_();
  Tensor y64 = max_pool2d(x64, 3, 2);
  CHECK(y64.dtype() == Dtype::Float64);
  CHECK(max_abs_diff(y64, max_pool2d(x32, 3, 2)) == 0.0);  // a max of exact copies
  CHECK(max_abs_diff(y64, naive_pool(x32, 3, 2)) == 0.0);
  Tensor gy = uniform(y64.shape(), g);
  Tensor xr = x32.detach().requires_grad_();
  max_pool2d(xr, 3, 2).backward(gy);
  y64.backward(gy.to(Dtype::Float64));
  CHECK(x64.grad().dtype() == Dtype::Float64);
  CHECK(max_abs_diff(x64.grad(), xr.grad()) < 1e-6);

  // by hand: the gradient goes to each window's arg max, overlapping windows add up
  Tensor z = tensor(std::vector<double>{1, 2, 3, 4, 9, 5, 6, 7, 8}, {1, 1, 3, 3}, true);
  max_pool2d(z, 2, 1).sum().backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{0, 0, 0, 0, 4, 0, 0, 0, 0});
  // values Float32 cannot tell apart still pick the right maximum
  Tensor close = tensor(std::vector<double>{1, 1 + 1e-12, 1 - 1e-12, 1}, {1, 1, 2, 2});
  CHECK(max_pool2d(close, 2).item<double>() == 1 + 1e-12);
  // a NaN propagates, as in the Float32 path
  Tensor nan = tensor(std::vector<double>{1, std::nan(""), 3, 4}, {1, 1, 2, 2});
  CHECK(std::isnan(max_pool2d(nan, 2).item<double>()));
}

TEST_CASE("conv2d & max_pool2d: mixed dtypes are one-line errors") {
  Tensor x = zeros({1, 1, 4, 4}, Dtype::Float64), w = zeros({1, 1, 2, 2});
  CHECK_THROWS_WITH_AS(conv2d(x, w), "conv2d: weight has dtype Float32 but the input is Float64 (convert one with .to(dtype))",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w.to(Dtype::Float64), zeros({1})),
                       "conv2d: bias has dtype Float32 but the input is Float64 (convert one with .to(dtype))", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(zeros({1, 1, 2, 2}, Dtype::Int64), 2), Contains("Int64"), Error);
}
