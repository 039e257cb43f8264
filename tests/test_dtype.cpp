// The dtype foundation: names and promotion, BFloat16 rounding, casts with
// to(), item<T>(), from_blob, dtype arguments on factories, Float64 in-place
// methods, and gradients that cross dtypes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <tape/tape.hpp>

#include "error_of.hpp"

using namespace tape;
using tape_test::error_of;

TEST_CASE("dtype: names, sizes and promotion") {
  CHECK(std::string(dtype_name(Dtype::Float64)) == "Float64");
  CHECK(std::string(dtype_name(Dtype::BFloat16)) == "BFloat16");
  CHECK(dtype_size(Dtype::Float64) == 8);
  CHECK(dtype_size(Dtype::BFloat16) == 2);
  CHECK(is_floating(Dtype::BFloat16));
  CHECK_FALSE(is_floating(Dtype::Int64));
  CHECK(promote_types(Dtype::Float32, Dtype::Float64) == Dtype::Float64);
  CHECK(promote_types(Dtype::Int64, Dtype::Float32) == Dtype::Float32);
  CHECK(promote_types(Dtype::BFloat16, Dtype::Float32) == Dtype::Float32);
  CHECK(promote_types(Dtype::Int64, Dtype::BFloat16) == Dtype::BFloat16);
  CHECK(promote_types(Dtype::Bool, Dtype::Int64) == Dtype::Int64);
  CHECK(promote_types(Dtype::Bool, Dtype::Bool) == Dtype::Bool);
}

TEST_CASE("dtype: BFloat16 rounds to nearest even and keeps NaN") {
  CHECK(float(BFloat16(1.f)) == 1.f);
  CHECK(float(BFloat16(3.14159f)) == 3.140625f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1)
  CHECK(float(BFloat16(1.f + 0x1p-8f)) == 1.f);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6
  CHECK(float(BFloat16(1.f + 3 * 0x1p-8f)) == 1.f + 0x1p-6f);
  CHECK(float(BFloat16(1.f + 0x1p-8f + 0x1p-12f)) == 1.f + 0x1p-7f);  // above halfway: up
  CHECK(std::isnan(float(BFloat16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(float(BFloat16(INFINITY))));
  CHECK(float(BFloat16(-2.5f)) == -2.5f);
}

TEST_CASE("dtype: Float64 keeps what Float32 rounds away") {
  Tensor d = tensor(std::vector<double>{1.0 + 1e-10, -3.0}, {2});
  CHECK(d.dtype() == Dtype::Float64);
  CHECK(d.to_vector<double>()[0] == 1.0 + 1e-10);
  CHECK(d.to(Dtype::Float32).to_vector<float>()[0] == 1.f);  // Float32 loses the 1e-10
  CHECK(d.select(0, 0).item<double>() == 1.0 + 1e-10);
  CHECK(d.select(0, 1).item<int64_t>() == -3);
  CHECK(to_string(d).find("dtype=Float64") != std::string::npos);
  CHECK(to_string(d.to(Dtype::BFloat16)) == "tensor([ 1., -3.], shape=[2], dtype=BFloat16)");
}

TEST_CASE("dtype: to() converts like PyTorch") {
  Tensor x = tensor({-1.7f, -0.5f, 0.f, 2.9f}, {4});
  CHECK(x.to(Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 0, 2});  // toward zero
  CHECK(x.to(Dtype::Bool).to_vector<bool>() == std::vector<bool>{true, true, false, true});
  CHECK(x.to(Dtype::Float64).to_vector<double>() == std::vector<double>{-1.7f, -0.5f, 0.f, 2.9f});
  CHECK(x.to(Dtype::BFloat16).to(Dtype::Float32).to_vector<float>() ==
        std::vector<float>{-1.703125f, -0.5f, 0.f, 2.90625f});
  Tensor b = tensor(std::vector<bool>{true, false}, {2});
  CHECK(b.to(Dtype::Float32).to_vector<float>() == std::vector<float>{1.f, 0.f});
  CHECK(b.to(Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  const int64_t big = (int64_t(1) << 60) + 1;
  Tensor i = tensor(std::vector<int64_t>{big, -7}, {2});
  CHECK(i.to(Dtype::Float64).to_vector<double>()[1] == -7.0);
  CHECK(i.select(0, 0).item<int64_t>() == big);  // exact, not through double
  // NaN and out-of-range values become 0 instead of undefined behaviour
  CHECK(tensor({NAN, 1e30f}, {2}).to(Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  // the same dtype is the same tensor (no copy), as in PyTorch
  CHECK(x.to(Dtype::Float32).is_same(x));
  // non-contiguous input
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  CHECK(m.to(Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("dtype: to() is differentiable between floating dtypes, and gradients keep each leaf's dtype") {
  Tensor x = tensor({1.f, 2.f, 3.f}, {3}, true);
  Tensor y = x.to(Dtype::Float64);
  CHECK(y.dtype() == Dtype::Float64);
  CHECK(std::string(y.grad_fn_name()) == "ToCopyBackward");
  y.to(Dtype::Float32).sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == Dtype::Float32);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{1, 1, 1});

  Tensor d = tensor(std::vector<double>{0.5, 0.25}, {2}, true);
  d.to(Dtype::Float32).sum().backward();
  CHECK(d.grad().dtype() == Dtype::Float64);
  CHECK(d.grad().to_vector<double>() == std::vector<double>{1.0, 1.0});

  Tensor h = x.to(Dtype::BFloat16);
  CHECK(h.requires_grad());
  CHECK_FALSE(x.to(Dtype::Int64).requires_grad());  // integers carry no gradient
  CHECK(error_of([] { zeros({2}, Dtype::Bool).requires_grad_(); }) ==
        "requires_grad_(): only floating-point tensors can require grad, got Bool tensor of shape [2]");
}

TEST_CASE("dtype: item<T>() for every dtype, and its errors") {
  CHECK(scalar_tensor(2.5, Dtype::Float64).item<double>() == 2.5);
  CHECK(scalar_tensor(2.5).item<float>() == 2.5f);
  CHECK(scalar_tensor(1, Dtype::Bool).item<bool>());
  CHECK(scalar_tensor(-4, Dtype::Int64).item<int64_t>() == -4);
  CHECK(scalar_tensor(3.75, Dtype::BFloat16).item<double>() == 3.75);
  CHECK(scalar_tensor(7.9).item<int64_t>() == 7);
  CHECK(error_of([] { zeros({2}).item<double>(); }) ==
        "item(): only one-element tensors can be converted to a scalar, got shape [2] (2 elements)");
  CHECK(error_of([] { scalar_tensor(NAN).item<int64_t>(); }).find("does not fit an integer") != std::string::npos);
}

TEST_CASE("dtype: factories take a dtype") {
  CHECK(zeros({2}, Dtype::Float64).to_vector<double>() == std::vector<double>{0, 0});
  CHECK(ones({2}, Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(full({2}, 1, Dtype::Bool).to_vector<bool>() == std::vector<bool>{true, true});
  CHECK(full({1}, 0.1, Dtype::Float64).item<double>() == 0.1);
  CHECK(empty({3, 0}, Dtype::BFloat16).numel() == 0);
  CHECK(arange(0.0, 1.0, 0.25, Dtype::Float64).to_vector<double>() == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(arange(3, Dtype::Float64).to_vector<double>() == std::vector<double>{0, 1, 2});
  CHECK(arange(0.0, 3.0, 1.0, Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  Generator g1(5), g2(5);
  Tensor f = randn({6}, g1);
  Tensor d = randn({6}, Dtype::Float64, g2);
  CHECK(d.dtype() == Dtype::Float64);
  CHECK(d.to_vector<double>() == f.to(Dtype::Float64).to_vector<double>());  // the same draws, widened
  CHECK(zeros_like(d).dtype() == Dtype::Float64);
  CHECK(ones_like(arange(2, Dtype::Int64)).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(full_like(d, 2.0).to_vector<double>() == std::vector<double>(6, 2.0));
  CHECK(error_of([] { randn({2}, Dtype::Int64); }) == "randn: dtype must be floating, got Int64");
  CHECK(error_of([] { full({1}, 0.5, Dtype::Int64); }) == "full(): value 0.5 is not an Int64");
  CHECK(error_of([] { arange(2, Dtype::Bool); }) == "arange(): dtype Bool is not supported");
}

TEST_CASE("dtype: from_blob wraps caller memory without a copy") {
  std::vector<double> buf{1, 2, 3, 4, 5, 6};
  {
    Tensor t = from_blob(buf.data(), {2, 3}, Dtype::Float64);
    CHECK(t.data<double>() == buf.data());
    buf[4] = 50;
    CHECK(t.to_vector<double>()[4] == 50);  // the caller's write is visible
    t.select(0, 0).fill_(-1);                // a write through a view reaches the caller
    CHECK(buf[0] == -1);
    CHECK(buf[2] == -1);
    CHECK(buf[3] == 4);
    Tensor c = t.clone();
    c.fill_(9);
    CHECK(buf[5] == 6);  // clone owns its memory
  }
  CHECK(buf[1] == -1);  // the tensor's end does not free or touch the buffer
  std::vector<int64_t> ints{7, 8};
  CHECK(from_blob(ints.data(), {2}, Dtype::Int64).sum().item<int64_t>() == 15);
  CHECK(error_of([] { from_blob(nullptr, {2}); }) == "from_blob(): data is null for shape [2]");
  CHECK(from_blob(nullptr, {0}).numel() == 0);
}

TEST_CASE("dtype: in-place methods on Float64 and Int64") {
  Tensor d = tensor(std::vector<double>{1.0, 2.0}, {2});
  d.add_(tensor(std::vector<double>{1e-12, 1.0}, {2}), 0.5);
  CHECK(d.to_vector<double>() == std::vector<double>{1.0 + 0.5e-12, 2.5});
  d.mul_(2.0);
  CHECK(d.to_vector<double>()[1] == 5.0);
  Tensor i = arange(3, Dtype::Int64);
  i.add_(10);
  i.mul_(tensor(std::vector<int64_t>{1, 2, 3}, {3}));
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{10, 22, 36});
  CHECK(error_of([&] { i.add_(tensor({0.5f}, {1})); }) ==
        "add_: result type Float32 cannot be written into a tensor of dtype Int64");
  d.fill_(0.1);
  CHECK(d.to_vector<double>() == std::vector<double>{0.1, 0.1});
  Tensor b = zeros({2}, Dtype::Bool);
  b.fill_(1);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, true});
}

TEST_CASE("dtype: Module::to(Float64) converts parameters in place and trains in double") {
  manual_seed(3);
  nn::Linear layer(3, 2);
  Tensor w32 = layer.weight.clone();
  Tensor handle = layer.named_parameters()[0].second;  // a second handle to the weight
  layer.to(Dtype::Float64);
  CHECK(layer.weight.dtype() == Dtype::Float64);
  CHECK(handle.dtype() == Dtype::Float64);  // every handle sees the conversion
  CHECK(layer.named_parameters()[0].first == "weight");
  CHECK(max_abs_diff(layer.weight, w32) == 0.0);  // Float32 → Float64 is exact
  Tensor x = tensor(std::vector<double>{1, 2, 3, -1, 0.5, 0}, {2, 3});
  Tensor y = layer(x);
  CHECK(y.dtype() == Dtype::Float64);
  y.sum().backward();
  REQUIRE(layer.weight.grad().defined());
  CHECK(layer.weight.grad().dtype() == Dtype::Float64);
  // d(sum(x·Wᵀ + b))/dW[o, i] = Σ_n x[n, i]
  CHECK(layer.weight.grad().to_vector<double>() == std::vector<double>{0, 2.5, 3, 0, 2.5, 3});
  optim::SGD opt(layer.parameters(), 0.5);
  opt.step();
  CHECK(layer.weight.select(0, 1).select(0, 1).item<double>() ==
        doctest::Approx(w32.select(0, 1).select(0, 1).item<double>() - 1.25).epsilon(1e-12));  // w − 0.5·2.5
  CHECK(error_of([&] { layer.to(Dtype::Int64); }) == "Module::to: dtype must be floating, got Int64");
}

TEST_CASE("dtype: BFloat16 matmul, reductions, softmax, losses and conv compute in Float32 and round once") {
  Tensor a = tensor({1.f, 2.f, 3.f, 4.f}, {2, 2}).to(Dtype::BFloat16).requires_grad_();
  Tensor b = tensor({0.5f, -1.f, 0.25f, 2.f}, {2, 2}).to(Dtype::BFloat16);
  Tensor c = matmul(a, b);
  CHECK(c.dtype() == Dtype::BFloat16);
  CHECK(c.to(Dtype::Float32).to_vector<float>() == std::vector<float>{1.f, 3.f, 2.5f, 5.f});
  Tensor s = c.sum();
  CHECK(s.dtype() == Dtype::BFloat16);
  CHECK(s.item<float>() == 11.5f);
  s.backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().dtype() == Dtype::BFloat16);
  // d(sum(a·b))/da[i, k] = Σ_j b[k, j]: rows of b summed
  CHECK(a.grad().to(Dtype::Float32).to_vector<float>() == std::vector<float>{-0.5f, 2.25f, -0.5f, 2.25f});
  // 1/3 in BFloat16 is 0.333984375: softmax of two equal logits is exactly 0.5
  CHECK(softmax(zeros({1, 2}, Dtype::BFloat16), 1).to(Dtype::Float32).to_vector<float>() == std::vector<float>{0.5f, 0.5f});
  CHECK(argmax(b, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(cross_entropy(zeros({2, 4}, Dtype::BFloat16), arange(2, Dtype::Int64)).item<double>() ==
        float(BFloat16(std::log(4.f))));
  Tensor x = ones({1, 1, 4, 4}, Dtype::BFloat16), w = ones({1, 1, 3, 3}, Dtype::BFloat16);
  Tensor y = max_pool2d(conv2d(x, w), 2);
  CHECK(y.dtype() == Dtype::BFloat16);
  CHECK(y.item<float>() == 9.f);
  // a mixed BFloat16 / Float32 matmul is an error like any mixed matmul
  CHECK(error_of([&] { matmul(a, ones({2, 2})); }).find("matmul") == 0);
}
