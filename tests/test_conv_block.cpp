// The fused conv2d → ReLU → max_pool2d block (ops/conv_block.cpp): the same
// outputs and gradients as the composition, nn::Sequential's use of it, and the
// cases that fall back to the composition.
#include "tape/ops/fused.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>
#include <tape/tape.hpp>

#include "models.hpp"
#include "tape/ops/conv_block_amx.hpp"
#include "tape/ops/conv_block_direct.hpp"

using namespace tape;

namespace {

/// max |a − b| / max |b| (the relative error against the largest element).
double rel_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  const Tensor ad = a.detach().to(Dtype::Float64).contiguous(), bd = b.detach().to(Dtype::Float64).contiguous();
  const double* pa = ad.data<double>();
  const double* pb = bd.data<double>();
  double err = 0, scale = 0;
  for (int64_t i = 0; i < ad.numel(); ++i) {
    err = std::max(err, std::abs(pa[i] - pb[i]));
    scale = std::max(scale, std::abs(pb[i]));
  }
  return scale == 0 ? err : err / scale;
}

/// Sets TAPE_FUSE for a scope.
struct FuseEnv {
  explicit FuseEnv(bool on) { setenv("TAPE_FUSE", on ? "1" : "0", 1); }
  ~FuseEnv() { unsetenv("TAPE_FUSE"); }
};

struct Case {
  Shape x, w;
  bool bias = true;
  int64_t pool_k = 2, pool_s = -1;
  IntPair stride = 1, padding = 0;
  bool x_grad = true;
  double bias_shift = 0;  ///< added to the bias (negative: many all-negative windows)
};

struct Result {
  Tensor y, dx, dw, db;
};

Result run(const Case& c, bool fused, uint64_t seed = 1) {
  manual_seed(seed);
  Tensor x = randn(c.x), w = mul(randn(c.w), full({}, 0.3)), b = c.bias ? randn({c.w[0]}) : Tensor();
  if (c.bias) b = add(mul(b, full({}, 0.1)), full({}, c.bias_shift));
  Tensor v = randn({1});  // only draws; the upstream gradient comes below
  x.requires_grad_(c.x_grad);
  w.requires_grad_(true);
  if (c.bias) b.requires_grad_(true);
  Tensor y = fused ? conv2d_relu_max_pool2d(x, w, b, c.pool_k, c.pool_s, c.stride, c.padding)
                   : max_pool2d(relu(conv2d(x, w, b, c.stride, c.padding)), c.pool_k, c.pool_s);
  manual_seed(seed + 100);
  const Tensor g = randn(y.shape());
  sum(mul(y, g)).backward();
  return {y.detach(), c.x_grad ? x.grad() : Tensor(), w.grad(), c.bias ? b.grad() : Tensor()};
}

/// run(c, false)'s weight gradient without the ReLU (a wrong mask): max_pool2d(conv2d(x, w, b)).
Tensor dw_without_relu(const Case& c) {
  manual_seed(1);
  Tensor x = randn(c.x), w = mul(randn(c.w), full({}, 0.3)), b = randn({c.w[0]});
  b = add(mul(b, full({}, 0.1)), full({}, c.bias_shift));
  w.requires_grad_(true);
  const Tensor yn = max_pool2d(conv2d(x, w, b), c.pool_k, c.pool_s);
  manual_seed(101);
  sum(mul(yn, randn(yn.shape()))).backward();
  return w.grad();
}

void check_case(const Case& c) {
  const Result f = run(c, true), u = run(c, false);
  CHECK(rel_err(f.y, u.y) < 1e-6);
  CHECK(rel_err(f.dw, u.dw) < 1e-5);
  if (c.x_grad) CHECK(rel_err(f.dx, u.dx) < 1e-5);
  if (c.bias) CHECK(rel_err(f.db, u.db) < 1e-5);
}

/// check_case(c), and whether it ran the kernel whose calls `count` counts.
bool checked_by(int64_t (*count)(), const Case& c) {
  const int64_t before = count();
  check_case(c);
  return count() > before;
}

/// The fused block under NoGradGuard matches the composition; returns whether it
/// ran the kernel whose calls `count` counts.
bool inference_by(int64_t (*count)(), const Shape& xs, const Shape& ws) {
  manual_seed(3);
  const Tensor x = randn(xs), w = randn(ws), b = randn({ws[0]});
  NoGradGuard no_grad;
  const int64_t before = count();
  const Tensor y = conv2d_relu_max_pool2d(x, w, b, 2);
  CHECK(rel_err(y, max_pool2d(relu(conv2d(x, w, b)), 2)) < 1e-6);
  return count() > before;
}

}  // namespace

TEST_CASE("conv_block: the fused op records its own node") {
  Tensor x = randn({4, 1, 28, 28}), w = randn({6, 1, 5, 5}), b = randn({6});
  w.requires_grad_(true);
  const Tensor y = conv2d_relu_max_pool2d(x, w, b, 2);
  CHECK(y.shape() == Shape{4, 6, 12, 12});
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == std::string("ConvReluMaxPool2dBackward"));
  {
    FuseEnv off(false);
    const Tensor yu = conv2d_relu_max_pool2d(x, w, b, 2);
    CHECK(yu.grad_fn()->name() == std::string("MaxPool2dBackward"));
    CHECK(rel_err(y, yu) < 1e-6);
  }
}

TEST_CASE("conv_block: fused matches the composition on LeNet-5's shapes (several slices)") {
  SUBCASE("conv1: 400 images 1x28x28, input needs no gradient") { check_case({{400, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false}); }
  SUBCASE("conv1 with an input gradient") { check_case({{400, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, true}); }
  SUBCASE("conv2: 400 images 6x12x12") { check_case({{400, 6, 12, 12}, {16, 6, 5, 5}}); }
}

TEST_CASE("conv_block: fused matches the composition on odd shapes") {
  SUBCASE("batch 1, 3 channels, 7x9") { check_case({{1, 3, 7, 9}, {5, 3, 3, 3}}); }
  SUBCASE("pool stride != kernel") { check_case({{3, 3, 11, 13}, {8, 3, 3, 3}, true, 2, 1}); }
  SUBCASE("pool 3, stride 2") { check_case({{5, 2, 12, 10}, {7, 2, 3, 3}, true, 3, 2}); }
  SUBCASE("no bias") { check_case({{6, 4, 9, 9}, {20, 4, 3, 3}, false}); }
  SUBCASE("conv stride 2, padding 1, 17 channels") { check_case({{4, 3, 15, 15}, {17, 3, 3, 3}, true, 2, -1, 2, 1}); }
  SUBCASE("32 output channels, 16 input channels") { check_case({{9, 16, 10, 10}, {32, 16, 3, 3}}); }
}

TEST_CASE("conv_block: the direct kernels (few input channels, no input gradient) match the composition") {
  namespace db = tape::detail::direct_block;
  // Each case runs the direct kernels when the CPU has AVX-512 (counted), and oneDNN otherwise.
  const auto direct = [](const Case& c) { return checked_by(db::calls, c); };
  const bool avx512 = db::available();
  SUBCASE("LeNet-5's conv1, 5 images") { CHECK(direct({{5, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false}) == avx512); }
  SUBCASE("3 channels, padding 1, odd sizes, 8 filters (tiles of 6 + 2), no bias") {
    CHECK(direct({{3, 3, 11, 13}, {8, 3, 3, 3}, false, 2, -1, 1, 1, false}) == avx512);
  }
  SUBCASE("rows of 34 pooled values (three vector chunks), 7 filters, 9 taps, dead windows") {
    CHECK(direct({{2, 1, 40, 70}, {7, 1, 3, 3}, true, 2, -1, 1, IntPair(2, 0), false, -1.0}) == avx512);
  }
  SUBCASE("a 1x1 pooled output from a 3x2 conv output, one filter") {
    CHECK(direct({{4, 2, 6, 5}, {1, 2, 4, 4}, true, 2, -1, 1, 0, false}) == avx512);
  }
  SUBCASE("an input that needs a gradient, 4 channels or a pool of 3 take oneDNN") {
    CHECK_FALSE(direct({{5, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, true}));
    CHECK_FALSE(direct({{5, 4, 12, 12}, {6, 4, 5, 5}, true, 2, -1, 1, 0, false}));
    CHECK_FALSE(direct({{5, 1, 12, 12}, {6, 1, 3, 3}, true, 3, -1, 1, 0, false}));
  }
  SUBCASE("inference") { CHECK(inference_by(db::calls, {7, 1, 28, 28}, {6, 1, 5, 5}) == avx512); }
  SUBCASE("TAPE_DIRECT_CONV=0 turns them off") {
    setenv("TAPE_DIRECT_CONV", "0", 1);
    CHECK_FALSE(db::available());
    CHECK_FALSE(direct({{5, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false}));
    unsetenv("TAPE_DIRECT_CONV");
  }
}

TEST_CASE("conv_block: the direct backward-data (from the blocked output gradient) matches the composition") {
  namespace db = tape::detail::direct_block;
  const auto direct_dx = [](const Case& c) { return checked_by(db::backward_data_calls, c); };
  const bool avx512 = db::available();
  SUBCASE("LeNet-5's conv2, 300 images") { CHECK(direct_dx({{300, 6, 12, 12}, {16, 6, 5, 5}}) == avx512); }
  SUBCASE("20 filters (a block of 16 and one of 4), rows of 19, positions not a multiple of 16") {
    CHECK(direct_dx({{3, 5, 9, 19}, {20, 5, 3, 4}, true, 2, -1, 1, 0, true, -0.5}) == avx512);
  }
  SUBCASE("rows of 40 inputs (three pieces), 1x1 kernel") { CHECK(direct_dx({{2, 2, 6, 40}, {16, 2, 1, 1}}) == avx512); }
  SUBCASE("padding or a conv stride take oneDNN") {
    CHECK_FALSE(direct_dx({{3, 6, 12, 12}, {16, 6, 5, 5}, true, 2, -1, 1, 1, true}));
    CHECK_FALSE(direct_dx({{3, 6, 13, 13}, {16, 6, 3, 3}, true, 2, -1, 2, 0, true}));
  }
}

TEST_CASE("conv_block: the direct pooling on the blocked conv output matches the composition") {
  // oneDNN's convolution (4+ input channels) writes nChw16c; direct_block's
  // pool16c kernels pool it straight to NCHW and route the gradient back
  namespace db = tape::detail::direct_block;
  const auto pooled16 = [](const Case& c) { return checked_by(db::pool16c_calls, c); };
  const bool avx512 = db::available();
  SUBCASE("LeNet-5's conv2, 300 images (4x4 pooled: one transpose)") {
    CHECK(pooled16({{300, 6, 12, 12}, {16, 6, 5, 5}}) == avx512);
  }
  SUBCASE("20 filters (blocks of 16 and 4), a 9x15 conv output (odd row and column), 28 pooled positions, dead windows") {
    CHECK(pooled16({{3, 5, 11, 17}, {20, 5, 3, 3}, true, 2, -1, 1, 0, true, -0.5}) == avx512);
  }
  SUBCASE("7 filters, 5x5 pooled, no input gradient, no bias") {
    CHECK(pooled16({{4, 4, 13, 13}, {7, 4, 3, 3}, false, 2, -1, 1, 0, false}) == avx512);
  }
  SUBCASE("padding 1, 40 pooled positions (three transposes), 33 filters") {
    CHECK(pooled16({{2, 6, 8, 20}, {33, 6, 3, 3}, true, 2, -1, 1, 1, true}) == avx512);
  }
  SUBCASE("ties: a constant input makes every window's values equal; the first gets the gradient") {
    manual_seed(5);
    Tensor x = full({3, 4, 10, 10}, 1.0), w = randn({16, 4, 3, 3}), b = randn({16});
    Tensor wf = w.detach().clone(), wu = w.detach().clone();
    wf.requires_grad_(true), wu.requires_grad_(true);
    Tensor xf = x.detach().clone(), xu = x.detach().clone();
    xf.requires_grad_(true), xu.requires_grad_(true);
    const int64_t before = db::pool16c_calls();
    const Tensor yf = conv2d_relu_max_pool2d(xf, wf, b, 2), yu = max_pool2d(relu(conv2d(xu, wu, b)), 2);
    CHECK((db::pool16c_calls() > before) == avx512);
    manual_seed(6);
    const Tensor g = randn(yf.shape());
    sum(mul(yf, g)).backward();
    sum(mul(yu, g)).backward();
    CHECK(rel_err(yf, yu) < 1e-6);
    CHECK(rel_err(xf.grad(), xu.grad()) < 1e-5);
    CHECK(rel_err(wf.grad(), wu.grad()) < 1e-5);
  }
  SUBCASE("inference") { CHECK(inference_by(db::pool16c_calls, {9, 6, 12, 12}, {16, 6, 5, 5}) == avx512); }
  SUBCASE("pool 3, or TAPE_DIRECT_CONV=0, take oneDNN's pooling") {
    CHECK_FALSE(pooled16({{3, 6, 12, 12}, {16, 6, 3, 3}, true, 3, 2}));
    setenv("TAPE_DIRECT_CONV", "0", 1);
    CHECK_FALSE(pooled16({{3, 6, 12, 12}, {16, 6, 5, 5}}));
    unsetenv("TAPE_DIRECT_CONV");
  }
}

TEST_CASE("conv_block: the nChw16c -> NCHW transpose (direct; skipped without AVX-512) matches its definition" *
          doctest::skip(!tape::detail::direct_block::available())) {
  namespace db = tape::detail::direct_block;
  // channels: one partial block, one full, two and a half; pixels: below, at and past 16, with tails
  for (const auto& [n, c, hw] : std::vector<std::array<int64_t, 3>>{{3, 6, 5}, {2, 16, 16}, {2, 33, 37}, {1, 1, 1}}) {
    INFO("n ", n, " c ", c, " hw ", hw);
    const int64_t blocks = (c + 15) / 16;
    std::vector<float> from(size_t(n * blocks * hw * 16)), to(size_t(n * c * hw), -7.f);
    std::vector<uint8_t> positive(size_t(n * c * hw), 9);
    std::mt19937 rng(4);
    std::normal_distribution<float> normal;
    for (float& v : from) v = normal(rng);
    db::nchw16c_to_nchw(from.data(), to.data(), n, c, hw, positive.data());
    int wrong = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t p = 0; p < hw; ++p) {
          const float want = from[size_t(((i * blocks + k / 16) * hw + p) * 16 + k % 16)];
          const size_t at = size_t((i * c + k) * hw + p);
          wrong += to[at] != want || positive[at] != (want > 0.f ? 1 : 0);
        }
    CHECK(wrong == 0);
  }
}

TEST_CASE("conv_block: the AMX kernels (skipped without AMX) match Float64 on bf16-rounded operands" *
          doctest::skip(!tape::detail::amx_block::available())) {
  // The kernels round x, the output gradient and w to bf16 and sum the products
  // in f32; products of bf16 values are exact in f32, so against Float64 on the
  // same rounded operands only the order of the sums differs (~1e-6): a product
  // 0.1 % off is caught. The output gradient comes in nChw16c (padding channels 0).
  namespace amx = tape::detail::amx_block;
  struct Dims {
    int64_t n, c, h, w, oc, kh, kw;
  };
  const auto bf16 = [](const Tensor& t) { return t.to(Dtype::BFloat16).to(Dtype::Float64); };
  // LeNet's conv2 (9 images: a chunk and a tail), odd sizes, one tap, 70 (c, kx)
  // columns in 5 kernel rows (35 accumulator tiles), outputs past 64 positions,
  // rows of 37 (three 16-wide position tiles);
  // backward-weights takes even output widths only (a pair of positions in one row)
  for (const Dims d : {Dims{9, 6, 12, 12, 16, 5, 5}, Dims{3, 3, 9, 15, 7, 3, 4}, Dims{2, 4, 5, 6, 1, 1, 1},
                       Dims{2, 10, 11, 14, 16, 5, 7}, Dims{3, 2, 16, 14, 5, 3, 3}, Dims{2, 3, 6, 37, 5, 3, 4}}) {
    INFO("n ", d.n, " c ", d.c, " ", d.h, "x", d.w, " oc ", d.oc, " k ", d.kh, "x", d.kw);
    manual_seed(7);
    const int64_t oh = d.h - d.kh + 1, ow = d.w - d.kw + 1;
    const Tensor x = randn({d.n, d.c, d.h, d.w}), w = randn({d.oc, d.c, d.kh, d.kw}), g = randn({d.n, d.oc, oh, ow});
    std::vector<float> dc(size_t(d.n * oh * ow * 16), 0.f);  // g in nChw16c
    const float* pg = g.data<float>();
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t o = 0; o < d.oc; ++o)
        for (int64_t p = 0; p < oh * ow; ++p) dc[size_t((i * oh * ow + p) * 16 + o)] = pg[(i * d.oc + o) * oh * ow + p];
    // the Float64 reference on the rounded operands
    Tensor xr = bf16(x), wr = bf16(w);
    xr.requires_grad_(true);
    wr.requires_grad_(true);
    sum(mul(conv2d(xr, wr), bf16(g))).backward();
    tape::detail::direct_block::Geometry geo;
    geo.n = d.n, geo.c = d.c, geo.h = d.h, geo.w = d.w, geo.oc = d.oc, geo.kh = d.kh, geo.kw = d.kw;
    // forward: y = max_pool2x2(relu(conv + b)) and the window codes
    {
      REQUIRE(amx::takes_forward(geo));
      const Tensor b = randn({d.oc});
      const int64_t ph = oh / 2, pw = ow / 2;
      std::vector<float> y(size_t(d.n * d.oc * ph * pw), -1.f);
      std::vector<uint8_t> code(size_t(tape::detail::direct_block::pool16c_codes(d.n, d.oc, oh, ow)), 9);
      REQUIRE(amx::forward(geo, x.data<float>(), w.data<float>(), b.data<float>(), y.data(), code.data()));
      Tensor conv_ref;
      {
        NoGradGuard ng;
        conv_ref = add(conv2d(bf16(x), bf16(w)), reshape(b.to(Dtype::Float64), {1, d.oc, 1, 1})).contiguous();
      }
      const Tensor y_ref = max_pool2d(relu(conv_ref), 2).contiguous();
      const Tensor yt = tensor(y, {d.n, d.oc, ph, pw});
      CHECK(rel_err(yt, y_ref) < 1e-5);
      // each code names its window's maximum (4: no gradient, y = 0)
      const double* cr = conv_ref.data<double>();
      const double scale = std::max(1.0, rel_err(y_ref, zeros_like(y_ref)));
      int wrong = 0;
      for (int64_t i = 0; i < d.n; ++i)
        for (int64_t o = 0; o < d.oc; ++o)
          for (int64_t py = 0; py < ph; ++py)
            for (int64_t px = 0; px < pw; ++px) {
              const int at = code[size_t(((i * ph + py) * pw + px) * 16 + o)];
              const float v = y[size_t(((i * d.oc + o) * ph + py) * pw + px)];
              if (at == 4) {
                wrong += v != 0.f;
                continue;
              }
              const int64_t cy = 2 * py + at / 2, cx = 2 * px + at % 2;
              wrong += at > 3 || std::abs(cr[((i * d.oc + o) * oh + cy) * ow + cx] - v) > 1e-4 * scale;
            }
      CHECK(wrong == 0);
      // the fused backward (pooling backward, weights and data on chunks in cache)
      // equals pool16c_backward followed by the two passes
      if (amx::takes_backward(geo)) {
        const Tensor gy = randn({d.n, d.oc, ph, pw});
        std::vector<float> dc16(size_t(d.n * oh * ow * 16));
        tape::detail::direct_block::pool16c_backward(d.n, d.oc, oh, ow, gy.data<float>(), code.data(), dc16.data());
        Tensor dx1 = zeros(x.shape()), dw1 = zeros(w.shape()), db1 = zeros({d.oc});
        REQUIRE(amx::backward_data_16c(geo, dc16.data(), w.data<float>(), dx1.data<float>()));
        REQUIRE(amx::backward_weights_16c(geo, x.data<float>(), dc16.data(), dw1.data<float>(), db1.data<float>()));
        Tensor dx2 = zeros(x.shape()), dw2 = zeros(w.shape()), db2 = zeros({d.oc});
        const int64_t calls = amx::backward_calls();
        REQUIRE(amx::backward(geo, x.data<float>(), gy.data<float>(), code.data(), w.data<float>(), dx2.data<float>(),
                              dw2.data<float>(), db2.data<float>()));
        CHECK(amx::backward_calls() == calls + 1);
        CHECK(rel_err(dx2, dx1) < 1e-6);
        CHECK(rel_err(dw2, dw1) < 1e-6);
        CHECK(rel_err(db2, db1) < 1e-6);
        CHECK(rel_err(dw2, zeros_like(dw2)) > 0);
      }
    }
    REQUIRE(amx::takes_backward_data(geo));
    REQUIRE(amx::takes_backward_weights(geo));
    Tensor dx = full(x.shape(), 5.0);  // overwritten
    REQUIRE(amx::backward_data_16c(geo, dc.data(), w.data<float>(), dx.data<float>()));
    CHECK(rel_err(dx, xr.grad()) < 1e-5);
    Tensor dw = full(w.shape(), 0.5), db = full({d.oc}, 0.25);  // added to
    REQUIRE(amx::backward_weights_16c(geo, x.data<float>(), dc.data(), dw.data<float>(), db.data<float>()));
    CHECK(rel_err(sub(dw, full({}, 0.5)), wr.grad()) < 1e-5);
    CHECK(rel_err(sub(db, full({}, 0.25)), sum(sum(sum(g, 3), 2), 0)) < 1e-5);
    // a non-finite input: false, nothing written (the caller runs f32)
    Tensor xn = x.clone();
    xn.data<float>()[x.numel() - 1] = std::numeric_limits<float>::infinity();
    const Tensor before = dw.clone();
    CHECK_FALSE(amx::backward_weights_16c(geo, xn.data<float>(), dc.data(), dw.data<float>(), db.data<float>()));
    {  // the forward declines it too (its caller then runs the composition)
      std::vector<float> yn(size_t(d.n * d.oc * (oh / 2) * (ow / 2)));
      CHECK_FALSE(amx::forward(geo, xn.data<float>(), w.data<float>(), nullptr, yn.data(), nullptr));
    }
    CHECK(rel_err(dw, before) == 0);
    // a non-finite weight: backward-data declines too
    Tensor wn = w.clone();
    wn.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
    const Tensor dx_before = dx.clone();
    CHECK_FALSE(amx::backward_data_16c(geo, dc.data(), wn.data<float>(), dx.data<float>()));
    CHECK(rel_err(dx, dx_before) == 0);
  }
  tape::detail::direct_block::Geometry odd;
  odd.n = 1, odd.c = 2, odd.h = 9, odd.w = 9, odd.oc = 4, odd.kh = 3, odd.kw = 3;  // a 7 × 7 output
  CHECK_FALSE(amx::takes_backward_weights(odd));
  CHECK(amx::takes_backward_data(odd));
}

TEST_CASE("conv_block: under autocast on AMX the fused block runs the AMX kernels" *
          doctest::skip(!tape::detail::amx_block::available())) {
  namespace amx = tape::detail::amx_block;
  const Case c{{40, 6, 12, 12}, {16, 6, 5, 5}};
  const int64_t forward0 = amx::forward_calls(), backward0 = amx::backward_calls();
  Result f, u;
  {
    AutocastGuard guard;
    f = run(c, true);
    u = run(c, false);
  }
  CHECK(amx::forward_calls() > forward0);
  CHECK(amx::backward_calls() > backward0);
  CHECK(rel_err(f.y, u.y) < 1e-2);
  CHECK(rel_err(f.dx, u.dx) < 1e-2);
  CHECK(rel_err(f.dw, u.dw) < 1e-2);
  CHECK(rel_err(f.db, u.db) < 1e-2);
  SUBCASE("TAPE_AMX_CONV=0 keeps oneDNN and the f32 passes") {
    setenv("TAPE_AMX_CONV", "0", 1);
    const int64_t f1 = amx::forward_calls(), b1 = amx::backward_calls(), d1 = amx::backward_data_calls();
    {
      AutocastGuard guard;
      run(c, true);
    }
    unsetenv("TAPE_AMX_CONV");
    CHECK(amx::forward_calls() == f1);
    CHECK(amx::backward_calls() == b1);
    CHECK(amx::backward_data_calls() == d1);
  }
  SUBCASE("3 x 3 pooling (oneDNN's): the per-pass AMX kernels from its blocked gradient") {
    const Case p3{{40, 6, 12, 12}, {16, 6, 5, 5}, true, 3};
    const int64_t d1 = amx::backward_data_calls(), w1 = amx::backward_weights_calls();
    Result f3, u3;
    {
      AutocastGuard guard;
      f3 = run(p3, true);
      u3 = run(p3, false);
    }
    CHECK(amx::backward_data_calls() > d1);
    CHECK(amx::backward_weights_calls() > w1);
    CHECK(rel_err(f3.dx, u3.dx) < 1e-2);
    CHECK(rel_err(f3.dw, u3.dw) < 1e-2);
  }
  SUBCASE("a non-finite input: the AMX forward declines it and the composition runs (NaN propagates)") {
    manual_seed(1);
    Tensor x = randn(c.x), w = randn(c.w), b = randn({16});
    x.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
    w.requires_grad_(true);
    const int64_t f1 = amx::forward_calls(), b1 = amx::backward_calls();
    {
      AutocastGuard guard;
      sum(conv2d_relu_max_pool2d(x, w, b, 2)).backward();
    }
    CHECK(amx::forward_calls() == f1 + 1);  // ran, found the NaN, declined
    CHECK(amx::backward_calls() == b1);
    CHECK(std::isnan(w.grad().data<float>()[0]));
  }
}

TEST_CASE("conv_block: the direct kernels on 60 random shapes") {
  // sizes, kernels, paddings, filter counts and biases drawn at random (fixed seed):
  // tails of every loop (rows, pooled chunks, filter and tap tiles, 16-position
  // transposes, dx pieces) land in different places each time
  namespace db = tape::detail::direct_block;
  const int64_t forward_before = db::calls(), data_before = db::backward_data_calls();
  std::mt19937 rng(15);
  const auto draw = [&](int lo, int hi) { return int64_t(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  int cases = 0;
  for (int i = 0; i < 60; ++i) {
    const bool data_pass = i % 2 == 1;  // odd cases: backward-data (input gradient, no padding)
    const int64_t kh = draw(1, 6), kw = draw(1, 6), pad = data_pass ? 0 : draw(0, 2);
    const int64_t h = kh + 2 * draw(1, 12) - 2 * pad + draw(0, 1), w = kw + 2 * draw(1, 20) - 2 * pad + draw(0, 1);
    const Case c{{draw(1, 5), draw(1, data_pass ? 8 : 3), std::max<int64_t>(h, 1), std::max<int64_t>(w, 1)},
                 {draw(1, 20), 0, kh, kw},
                 draw(0, 1) == 1,
                 2,
                 -1,
                 1,
                 pad,
                 data_pass,
                 double(draw(-2, 1)) * 0.5};
    Case full = c;
    full.w[1] = full.x[1];
    if (full.x[2] + 2 * pad < kh + 1 || full.x[3] + 2 * pad < kw + 1) continue;  // no 2x2 pooling window
    INFO("case ", i, ": x ", full.x, " w ", full.w, " padding ", pad, " bias ", full.bias);
    check_case(full);
    ++cases;
  }
  CHECK(cases >= 50);
  if (db::available()) {  // every forward case (x2: fused and composition runs) and every data case
    CHECK(db::calls() - forward_before >= cases / 2 - 2);
    CHECK(db::backward_data_calls() - data_before >= cases / 2 - 2);
  }
}

TEST_CASE("conv_block: the direct kernels give the same results on one thread and on two") {
  // Each thread takes a range of images and its own partial weight gradient: the
  // ranges and the reduction must cover every image once, whatever the team size.
  struct Threads {
    int saved = get_num_threads();
    explicit Threads(int n) { set_num_threads(n); }
    ~Threads() { set_num_threads(saved); }
  };
  const auto results = [](int threads) {
    Threads t(threads);
    const Result block1 = run({{37, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false}, true);
    const Result block2 = run({{37, 6, 12, 12}, {16, 6, 5, 5}}, true);
    return std::vector<Tensor>{block1.y, block1.dw, block1.db, block2.dx};
  };
  const std::vector<Tensor> one = results(1), two = results(2);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("output ", i);
    CHECK(rel_err(two[i], one[i]) < 1e-6);
  }
  // and both match the composition
  check_case({{37, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false});
}

TEST_CASE("conv_block: the ReLU mask (many all-negative windows)") {
  // a bias of −6 (conv outputs have a std of ~3.7) leaves most windows without a positive value: their pooled
  // output is 0 and their gradient must vanish, as relu'(0) = 0 in the composition
  const Case c{{64, 6, 12, 12}, {16, 6, 5, 5}, true, 2, -1, 1, 0, true, -6.0};
  const Result f = run(c, true), u = run(c, false);
  const Tensor y = f.y.contiguous();
  int64_t zeros_ = 0;
  for (int64_t i = 0; i < y.numel(); ++i) zeros_ += y.data<float>()[i] == 0.f;
  CHECK(zeros_ > y.numel() / 4);  // the mask matters
  CHECK(zeros_ < y.numel());
  CHECK(rel_err(f.y, u.y) < 1e-6);
  CHECK(rel_err(f.dx, u.dx) < 1e-5);
  CHECK(rel_err(f.dw, u.dw) < 1e-5);
  CHECK(rel_err(f.db, u.db) < 1e-5);
  // without the mask the gradient would be different: the composition without ReLU
  CHECK(rel_err(dw_without_relu(c), u.dw) > 1e-2);
}

TEST_CASE("conv_block: autocast runs the fused block in bf16") {
  // under an AutocastGuard the fused block multiplies in bf16 (Float32 results):
  // it matches the composition under the guard (bf16 convolution, f32 ReLU and
  // pooling) within bf16's rounding, its output matches the exact Float32 one as
  // closely and differs from it (bf16 ran), and a wrong ReLU mask would still be
  // caught (its error is far above the tolerance). The gradients are compared with
  // the bf16 composition only: against exact Float32 they differ by O(1) where a
  // rounded window's arg max moves (the composition's do just as much).
  const auto check = [](const Case& c, bool bf16_runs = true) {
    Result f, u;
    {
      AutocastGuard bf16;
      f = run(c, true);
      u = run(c, false);
    }
    const Result e = run(c, false);  // exact Float32
    for (const Tensor* t : {&f.y, &f.dw, &f.dx, &f.db})
      if (t->defined()) CHECK(t->dtype() == Dtype::Float32);
    if (!bf16_runs) {  // the block stays in f32: the exact results
      CHECK(rel_err(f.y, e.y) < 1e-6);
      CHECK(rel_err(f.dw, e.dw) < 1e-5);
      if (c.bias) CHECK(rel_err(f.db, e.db) < 1e-5);
      return 0.0;
    }
    CHECK(rel_err(f.y, u.y) < 1e-2);
    CHECK(rel_err(f.y, e.y) < 1e-2);
    CHECK(rel_err(f.dw, u.dw) < 1e-2);
    if (c.x_grad) CHECK(rel_err(f.dx, u.dx) < 1e-2);
    if (c.bias) CHECK(rel_err(f.db, u.db) < 1e-2);
    if (bf16_supported()) CHECK(rel_err(f.y, e.y) > 1e-6);
    return rel_err(f.dw, u.dw);
  };
  SUBCASE("conv1: 400 images 1x28x28 (fewer than 4 input channels: the block stays f32)") {
    check({{400, 1, 28, 28}, {6, 1, 5, 5}, true, 2, -1, 1, 0, false}, false);
  }
  SUBCASE("conv2: 400 images 6x12x12") { check({{400, 6, 12, 12}, {16, 6, 5, 5}}); }
  SUBCASE("odd: conv stride 2, padding 1, 17 output channels") { check({{4, 5, 15, 15}, {17, 5, 3, 3}, true, 2, -1, 2, 1}); }
  SUBCASE("the ReLU mask (many all-negative windows)") {
    const Case c{{64, 6, 12, 12}, {16, 6, 5, 5}, true, 2, -1, 1, 0, true, -6.0};
    const double err = check(c);
    // the weight gradient without the mask (no ReLU) is far from the right one
    CHECK(rel_err(dw_without_relu(c), run(c, false).dw) > 5 * std::max(err, 2e-3));
  }
}

TEST_CASE("conv_block: inference (no grad) matches") {
  manual_seed(5);
  const Tensor x = randn({300, 6, 12, 12}), w = randn({16, 6, 5, 5}), b = randn({16});
  NoGradGuard no_grad;
  const Tensor y = conv2d_relu_max_pool2d(x, w, b, 2);
  CHECK(!y.grad_fn());
  CHECK(rel_err(y, max_pool2d(relu(conv2d(x, w, b)), 2)) < 1e-6);
}

TEST_CASE("conv_block: non-finite inputs, Float64 and dilation take the composition") {
  Tensor x = randn({2, 2, 8, 8}), w = randn({4, 2, 3, 3}), b = randn({4});
  x.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  const Tensor y = conv2d_relu_max_pool2d(x, w, b, 2);
  const Tensor yu = max_pool2d(relu(conv2d(x, w, b)), 2);
  const Tensor yc = y.contiguous(), uc = yu.contiguous();
  int64_t nans = 0;
  for (int64_t i = 0; i < yc.numel(); ++i) {
    const float a = yc.data<float>()[i], e = uc.data<float>()[i];
    CHECK((a == e || (std::isnan(a) && std::isnan(e))));
    nans += std::isnan(a);
  }
  CHECK(nans > 0);

  // dilation 2: the composition (and its node)
  Tensor x2 = randn({2, 2, 12, 12}), w2 = randn({4, 2, 3, 3});
  w2.requires_grad_(true);
  const Tensor yd = conv2d_relu_max_pool2d(x2, w2, {}, 2, -1, 1, 0, 2);
  CHECK(yd.grad_fn()->name() == std::string("MaxPool2dBackward"));
  CHECK(yd.shape() == Shape{2, 4, 4, 4});
}

TEST_CASE("conv_block: Float64 falls back and passes gradcheck") {
  manual_seed(7);
  Tensor x = randn({2, 2, 7, 7}, Dtype::Float64), w = randn({3, 2, 3, 3}, Dtype::Float64),
         b = randn({3}, Dtype::Float64);
  for (Tensor* t : {&x, &w, &b}) t->requires_grad_(true);
  const auto f = [](const std::vector<Tensor>& in) { return conv2d_relu_max_pool2d(in[0], in[1], in[2], 2); };
  CHECK(f({x, w, b}).grad_fn()->name() == std::string("MaxPool2dBackward"));
  const GradcheckResult r = gradcheck(f, {x, w, b});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("conv_block: double backward (create_graph) equals the composition's") {
  const auto grads = [](bool fused) {
    manual_seed(9);
    Tensor x = randn({3, 2, 8, 8}), w = randn({4, 2, 3, 3}), b = randn({4});
    for (Tensor* t : {&x, &w, &b}) t->requires_grad_(true);
    const Tensor y = fused ? conv2d_relu_max_pool2d(x, w, b, 2) : max_pool2d(relu(conv2d(x, w, b)), 2);
    if (fused) CHECK(y.grad_fn()->name() == std::string("ConvReluMaxPool2dBackward"));
    const Tensor g = randn(y.shape());
    const std::vector<Tensor> d = autograd::grad({y}, {x, w}, {g}, false, /*create_graph=*/true);
    // a second-order quantity: d/dw of Σ dx²
    const Tensor s = sum(mul(d[0], d[0]));
    return autograd::grad({s}, {w})[0];
  };
  CHECK(rel_err(grads(true), grads(false)) < 1e-5);
}

TEST_CASE("conv_block: Sequential fuses Conv2d -> ReLU -> MaxPool2d unless hooked or TAPE_FUSE=0") {
  manual_seed(11);
  auto net = examples::build_layers(examples::ModelSpec::lenet5());
  auto first = [&](const Tensor& x) {
    auto head = std::make_shared<nn::Sequential>();
    for (size_t i = 0; i < 3; ++i) head->push_back(std::to_string(i), (*net)[i]);
    return (*head)(x);
  };
  const Tensor x = randn({8, 1, 28, 28});
  const Tensor y = first(x);
  CHECK(y.grad_fn()->name() == std::string("ConvReluMaxPool2dBackward"));
  {
    FuseEnv off(false);
    const Tensor yu = first(x);
    CHECK(yu.grad_fn()->name() == std::string("MaxPool2dBackward"));
    CHECK(rel_err(y, yu) < 1e-6);
  }
  int calls = 0;
  const int h = (*net)[1]->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
    ++calls;
    return Tensor();
  });
  const Tensor yh = first(x);
  CHECK(calls == 1);
  CHECK(yh.grad_fn()->name() == std::string("MaxPool2dBackward"));
  CHECK(rel_err(yh, y) < 1e-6);
  (*net)[1]->remove_forward_hook(h);
  CHECK(first(x).grad_fn()->name() == std::string("ConvReluMaxPool2dBackward"));
}

TEST_CASE("conv_block: Sequential fuses in inference too, and summary() still lists every module") {
  manual_seed(12);
  auto net = examples::build_layers(examples::ModelSpec::lenet5());
  const Tensor x = randn({64, 1, 28, 28});
  Tensor y, yu;
  std::string s, su;
  {
    NoGradGuard no_grad;
    y = (*net)(x);
  }
  s = net->summary({1, 1, 28, 28});
  {
    FuseEnv off(false);
    NoGradGuard no_grad;
    yu = (*net)(x);
    su = net->summary({1, 1, 28, 28});
  }
  CHECK(!y.grad_fn());
  CHECK(rel_err(y, yu) < 1e-6);
  CHECK(s == su);  // every leaf module's row, fused or not
  size_t pools = 0;
  for (size_t at = s.find("MaxPool2d"); at != std::string::npos; at = s.find("MaxPool2d", at + 1)) ++pools;
  CHECK(pools == 2);
}

TEST_CASE("conv_block: LeNet-5 training gives the same losses fused and unfused") {
  const auto losses = [](bool fused) {
    FuseEnv env(fused);
    manual_seed(21);
    auto net = examples::build_layers(examples::ModelSpec::lenet5());
    optim::SGD opt(net->parameters(), 0.05, 0.9);
    manual_seed(22);
    const Tensor x = randn({256, 1, 28, 28});
    Tensor t = Tensor::empty({256}, Dtype::Int64);
    for (int64_t i = 0; i < 256; ++i) t.data<int64_t>()[i] = (i * 7) % 10;
    std::vector<double> out;
    for (int step = 0; step < 5; ++step) {
      opt.zero_grad();
      const Tensor loss = cross_entropy((*net)(x), t);
      if (step == 0)
        CHECK(std::string((*net)(x).grad_fn()->name()) != "");  // forward runs either way
      loss.backward();
      opt.step();
      out.push_back(loss.item<double>());
    }
    return out;
  };
  const std::vector<double> f = losses(true), u = losses(false);
  for (size_t i = 0; i < f.size(); ++i) {
    INFO("step " << i << ": fused " << f[i] << " unfused " << u[i]);
    CHECK(std::abs(f[i] - u[i]) <= 1e-4 * std::abs(u[i]));
  }
  CHECK(f.back() < f.front());
}

TEST_CASE("conv_block: create_graph through two fused blocks (a gradient penalty on LeNet-5)") {
  const auto penalty_grad = [](bool fused) {
    FuseEnv env(fused);
    manual_seed(31);
    auto net = examples::build_layers(examples::ModelSpec::lenet5());
    Tensor x = randn({6, 1, 28, 28});
    x.requires_grad_(true);
    const Tensor y = (*net)(x);
    const Tensor gx = autograd::grad({sum(y)}, {x}, {}, false, /*create_graph=*/true)[0];
    const Tensor conv2_w = net->named_parameters()[2].second;  // conv2.weight
    return autograd::grad({sum(mul(gx, gx))}, {conv2_w})[0];
  };
  const Tensor f = penalty_grad(true), u = penalty_grad(false);
  CHECK(rel_err(u, zeros_like(u)) > 0);  // not vacuous
  CHECK(rel_err(f, u) < 1e-4);
}
