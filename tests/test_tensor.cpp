#include <doctest/doctest.h>

#include <cstdint>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

TEST_CASE("tensor: factories, shape and dtype") {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dim() == 2);
  CHECK(t.numel() == 6);
  CHECK(t.size(-1) == 3);
  CHECK(t.dtype() == Dtype::Float32);
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(zeros({2, 2}).to_vector<float>() == std::vector<float>(4, 0.f));
  CHECK(ones({3}).to_vector<float>() == std::vector<float>(3, 1.f));
  CHECK(full({2}, 7.5f).to_vector<float>() == std::vector<float>{7.5f, 7.5f});
  CHECK(arange(4, Dtype::Int64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(arange(0.f, 1.f, 0.25f).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  Tensor i = tensor(std::vector<int64_t>{3, 1}, {2});
  CHECK(i.dtype() == Dtype::Int64);
  CHECK(scalar_tensor(2.f).dim() == 0);
  CHECK(scalar_tensor(2.f).item() == 2.f);
}

TEST_CASE("tensor: storage is 64-byte aligned and copies alias") {
  for (int64_t n : {1, 7, 100, 100000}) {
    Tensor t = zeros({n});
    CHECK(reinterpret_cast<uintptr_t>(t.data<float>()) % 64 == 0);
  }
  Tensor a = zeros({3});
  Tensor b = a;
  b.data<float>()[1] = 5.f;
  CHECK(a.to_vector<float>()[1] == 5.f);
}

TEST_CASE("tensor: manual_seed gives the same numbers every run") {
  manual_seed(42);
  auto a = randn({1000}).to_vector<float>();
  manual_seed(42);
  auto b = randn({1000}).to_vector<float>();
  CHECK(a == b);
  double m = 0, v = 0;
  for (float x : a) m += x;
  m /= 1000;
  for (float x : a) v += (x - m) * (x - m);
  v /= 1000;
  CHECK(std::abs(m) < 0.1);
  CHECK(v == doctest::Approx(1.0).epsilon(0.1));
  manual_seed(1);
  auto r = rand({1000}).to_vector<float>();
  for (float x : r) CHECK((x >= 0.f && x < 1.f));
  // Known first values pin the generator across machines and releases.
  manual_seed(0);
  Generator g(0);
  CHECK(randn({1}).item() == g.normal());
}

TEST_CASE("tensor: views for reshape and transpose") {
  Tensor a = arange(0.f, 6.f);
  Tensor r = a.reshape({2, 3});
  CHECK(r.impl()->storage == a.impl()->storage);  // no copy
  Tensor t = r.t();
  CHECK(t.impl()->storage == a.impl()->storage);
  CHECK(!t.is_contiguous());
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(t.contiguous().is_contiguous());
  CHECK(r.reshape({-1}).shape() == Shape{6});
  CHECK(t.reshape({6}).to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_WITH_AS(t.data<float>(), Contains("not contiguous"), Error);
}

TEST_CASE("tensor: printing like PyTorch") {
  CHECK(to_string(tensor({1, 2, 3, 4}, {2, 2})) ==
        "tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=Float32)");
  CHECK(to_string(tensor({0.5f, -1.25f}, {2})) == "tensor([ 0.5000, -1.2500], shape=[2], dtype=Float32)");
  CHECK(to_string(tensor(std::vector<int64_t>{1, 20}, {2})) == "tensor([ 1, 20], shape=[2], dtype=Int64)");
  CHECK(to_string(scalar_tensor(3.f)) == "tensor(3., shape=[], dtype=Float32)");
  std::string big = to_string(zeros({100, 100}));
  CHECK(big.find("...") != std::string::npos);
  CHECK(big.size() < 400);
  CHECK(to_string(ones({2}).requires_grad_()).find("requires_grad=true") != std::string::npos);
  Tensor x = ones({2}).requires_grad_();
  CHECK(to_string(x * 2.f).find("grad_fn=<MulBackward>") != std::string::npos);
}

TEST_CASE("tensor: errors name the op and the values") {
  CHECK_THROWS_WITH_AS(tensor({1, 2, 3}, {2, 2}), "tensor(): 3 values do not fill shape [2, 2] (4 elements)", Error);
  CHECK_THROWS_WITH_AS(ones({2, 3}).item(),
                       "item(): only one-element tensors can be converted to a scalar, got shape [2, 3] (6 elements)",
                       Error);
  CHECK_THROWS_WITH_AS(ones({2}).data<int64_t>(), Contains("has dtype Float32, not Int64"), Error);
  CHECK_THROWS_WITH_AS(ones({2}).size(3), Contains("dim 3 is out of range for a 1-D tensor"), Error);
  CHECK_THROWS_WITH_AS(arange(3, Dtype::Int64).requires_grad_(), Contains("only floating-point tensors can require grad"),
                       Error);
  CHECK_THROWS_WITH_AS(Tensor().shape(), Contains("undefined"), Error);
}

TEST_CASE("allocator: a steady loop reuses cached blocks") {
  for (int i = 0; i < 3; ++i) Tensor t = zeros({1000, 50});
  const auto before = allocator_stats().system_allocs;
  for (int i = 0; i < 100; ++i) Tensor t = zeros({1000, 50});
  CHECK(allocator_stats().system_allocs == before);
}

TEST_CASE("allocator: a freed large block is split for smaller tensors and merged again") {
  empty_cache();
  { Tensor big = Tensor::empty({4 << 20}); }  // 16 MiB, now cached
  const auto before = allocator_stats();
  {
    Tensor a = Tensor::empty({1 << 20}), b = Tensor::empty({2 << 20});  // 4 + 8 MiB carved from it
    CHECK(allocator_stats().system_allocs == before.system_allocs);
    CHECK(allocator_stats().bytes_in_use >= before.bytes_in_use + (12u << 20));
  }
  { Tensor again = Tensor::empty({4 << 20}); }  // the pieces merged back into 16 MiB
  CHECK(allocator_stats().system_allocs == before.system_allocs);
  CHECK(allocator_stats().peak_bytes_in_use >= (16u << 20));
  const size_t cached = allocator_stats().bytes_cached;
  empty_cache();  // the segment has no live block: it goes back to the system
  CHECK(allocator_stats().bytes_cached + (16u << 20) <= cached);
}
