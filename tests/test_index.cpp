// Views (select, narrow, slice, squeeze, unsqueeze, permute, expand, view) and
// joins (cat, stack, split, chunk): forward values computed by hand, storage
// sharing, error messages, and backward on small cases (gradcheck covers the rest).
#include <doctest/doctest.h>

#include <string>
#include <tape/tape.hpp>

#include <vector>

#include "error_of.hpp"

using namespace tape;
using tape_test::error_of;

namespace {

/// 0, 1, ..., n-1 as Float32 of `shape`.
Tensor iota(const Shape& shape) { return reshape(arange(shape_numel(shape)), shape).detach(); }

std::vector<float> vals(const Tensor& t) { return t.to_vector<float>(); }

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }


}  // namespace

TEST_CASE("index: select, narrow and slice pick the right elements without copying") {
  Tensor x = iota({3, 4});  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  Tensor r = select(x, 0, 1);
  CHECK(r.shape() == Shape{4});
  CHECK(vals(r) == std::vector<float>{4, 5, 6, 7});
  CHECK(vals(select(x, 1, -1)) == std::vector<float>{3, 7, 11});
  CHECK(vals(x.select(-1, 0)) == std::vector<float>{0, 4, 8});
  CHECK(shares_storage(r, x));

  Tensor n = narrow(x, 1, 1, 2);
  CHECK(n.shape() == Shape{3, 2});
  CHECK(vals(n) == std::vector<float>{1, 2, 5, 6, 9, 10});
  CHECK(vals(x.narrow(0, -1, 1)) == std::vector<float>{8, 9, 10, 11});
  CHECK(narrow(x, 0, 3, 0).shape() == Shape{0, 4});

  CHECK(vals(slice(x, 1, 0, 4, 2)) == std::vector<float>{0, 2, 4, 6, 8, 10});
  CHECK(vals(slice(x, 1, -3, 100)) == std::vector<float>{1, 2, 3, 5, 6, 7, 9, 10, 11});  // -3 wraps, 100 clamps
  CHECK(slice(x, 0, 2, 1).shape() == Shape{0, 4});                                       // end < start: empty
  CHECK(slice(x, 0, -100, 100).shape() == Shape{3, 4});
  CHECK(vals(x.slice(0, 1, 3, 5)) == std::vector<float>{4, 5, 6, 7});
  // a view of a non-contiguous view
  Tensor tt = x.t();  // [4, 3]
  CHECK(vals(select(tt, 0, 2)) == std::vector<float>{2, 6, 10});
  CHECK(vals(slice(tt, 1, 1, 3)) == std::vector<float>{4, 8, 5, 9, 6, 10, 7, 11});
  // any dtype
  Tensor xi = tensor(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(select(xi, 1, 2).to_vector<int64_t>() == std::vector<int64_t>{3, 6});
}

TEST_CASE("index: views share storage and the version counter") {
  Tensor x = iota({3, 4});
  Tensor views[] = {select(x, 0, 1), narrow(x, 1, 1, 2), slice(x, 1, 1, 4, 2), unsqueeze(x, 0),
                    squeeze(unsqueeze(x, 1), 1), permute(x, {1, 0}), expand(slice(x, 0, 0, 1), {5, 4}),
                    x.view({2, 6}), split(x, 2, 0)[0], chunk(x, 2, 1)[1]};
  for (const Tensor& v : views) {
    CHECK(shares_storage(v, x));
    CHECK(v.version() == x.version());
  }
  const uint32_t before = x.version();
  x.mul_(10.f);  // an in-place write through the base...
  for (const Tensor& v : views) CHECK(v.version() == before + 1);  // ...bumps every view's version
  CHECK(vals(views[0]) == std::vector<float>{40, 50, 60, 70});    // and shows in it
  CHECK(vals(views[2]) == std::vector<float>{10, 30, 50, 70, 90, 110});
  CHECK(vals(views[9]) == std::vector<float>{20, 30, 60, 70, 100, 110});
}

TEST_CASE("index: squeeze, unsqueeze, permute, expand") {
  Tensor x = iota({2, 1, 3});
  CHECK(squeeze(x, 1).shape() == Shape{2, 3});
  CHECK(squeeze(x, 0).shape() == Shape{2, 1, 3});  // not size 1: unchanged
  CHECK(x.squeeze(-2).shape() == Shape{2, 3});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 1, 3});
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 1, 3, 1});
  CHECK(x.unsqueeze(3).is_contiguous());
  CHECK(unsqueeze(scalar_tensor(2.f), 0).shape() == Shape{1});

  Tensor y = iota({2, 3, 4});
  Tensor p = permute(y, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(vals(select(select(p, 0, 1), 0, 1)) == std::vector<float>{13, 17, 21});
  CHECK(y.permute({-1, 1, 0}).shape() == Shape{4, 3, 2});

  Tensor c = tensor({1, 2, 3}, {3, 1});
  Tensor e = expand(c, {2, -1, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(vals(select(e, 0, 1)) == std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  CHECK(c.expand({3, 2}).shape() == Shape{3, 2});
  CHECK(expand(c, {0, 3, 1}).numel() == 0);
}

TEST_CASE("index: view is a view, or an error naming both shapes; reshape copies when it must") {
  Tensor x = iota({2, 3, 4});
  Tensor v = x.view({6, -1});
  CHECK(v.shape() == Shape{6, 4});
  CHECK(shares_storage(v, x));
  Tensor tr = transpose(x, 0, 1);  // [3, 2, 4], the last dim still contiguous
  Tensor v2 = tr.view({3, 2, 2, 2});
  CHECK(shares_storage(v2, x));
  CHECK(vals(v2) == vals(tr));
  Tensor t2 = x.transpose(1, 2);  // [2, 4, 3]
  const std::string msg = error_of([&] { (void)t2.view({2, 12}); });
  CHECK(msg.find("view") != std::string::npos);
  CHECK(msg.find("[2, 4, 3]") != std::string::npos);
  CHECK(msg.find("[2, 12]") != std::string::npos);
  Tensor r = t2.reshape({2, 12});  // copies
  CHECK(!shares_storage(r, x));
  CHECK(vals(r) == vals(t2));
  CHECK_THROWS_AS((void)x.view({5, -1}), Error);
}

TEST_CASE("index: cat, stack, split and chunk") {
  Tensor a = iota({2, 2}), b = iota({2, 3}) + 10.f;
  Tensor c = cat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 5});
  CHECK(vals(c) == std::vector<float>{0, 1, 10, 11, 12, 2, 3, 13, 14, 15});
  CHECK(!shares_storage(c, a));
  CHECK(vals(cat({a, a.t()}, 0)) == std::vector<float>{0, 1, 2, 3, 0, 2, 1, 3});
  CHECK(cat({a, zeros({0, 2}), a}, -2).shape() == Shape{4, 2});  // 0-size along dim is fine
  CHECK(cat({tensor(std::vector<int64_t>{1, 2}, {2}), tensor(std::vector<int64_t>{3}, {1})}).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 2, 3});

  Tensor s = stack({a, a + 4.f}, 1);
  CHECK(s.shape() == Shape{2, 2, 2});
  CHECK(vals(s) == std::vector<float>{0, 1, 4, 5, 2, 3, 6, 7});
  CHECK(stack({a, a}, -1).shape() == Shape{2, 2, 2});
  CHECK(stack({a, a, a}).shape() == Shape{3, 2, 2});

  Tensor x = iota({5, 2});
  auto parts = split(x, 2);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2].shape() == Shape{1, 2});
  CHECK(vals(parts[1]) == std::vector<float>{4, 5, 6, 7});
  CHECK(x.split(1, 1).size() == 2);
  CHECK(split(zeros({0, 2}), 3).size() == 1);
  auto ch = chunk(x, 3);  // ceil(5/3) = 2: sizes 2, 2, 1
  REQUIRE(ch.size() == 3);
  CHECK(vals(ch[2]) == std::vector<float>{8, 9});
  CHECK(x.chunk(6).size() == 5);  // PyTorch: fewer chunks when they run out
  CHECK(chunk(x, 2, 1)[1].shape() == Shape{5, 1});
}

TEST_CASE("index: backward of views and joins on a hand-computed case") {
  Tensor x = iota({2, 3}).requires_grad_();
  Tensor y = sum(select(x, 1, 1)) + sum(slice(x, 1, 0, 3, 2)) * 2.f + sum(expand(narrow(x, 0, 1, 1), {4, 3}));
  y.backward();
  CHECK(vals(x.grad()) == std::vector<float>{2, 1, 2, 6, 5, 6});
  CHECK(std::string(select(x, 0, 0).grad_fn_name()) == "SelectBackward");

  Tensor a = tensor({1, 2}, {2}, true), b = tensor({3, 4, 5}, {3}, true);
  Tensor w = tensor({1, 2, 3, 4, 5}, {5});
  sum(mul(cat({a, b}), w)).backward();
  CHECK(vals(a.grad()) == std::vector<float>{1, 2});
  CHECK(vals(b.grad()) == std::vector<float>{3, 4, 5});
  Tensor p = tensor({1, 2}, {2}, true), q = tensor({3, 4}, {2}, true);
  sum(mul(stack({p, q}, 1), tensor({1, 10, 100, 1000}, {2, 2}))).backward();
  CHECK(vals(p.grad()) == std::vector<float>{1, 100});
  CHECK(vals(q.grad()) == std::vector<float>{10, 1000});
  Tensor z = tensor({1, 2, 3, 4, 5}, {5}, true);
  auto zs = chunk(z, 2);
  sum(zs[0] * 3.f).backward();  // only the first chunk is used
  CHECK(vals(z.grad()) == std::vector<float>{3, 3, 3, 0, 0});
}

TEST_CASE("index: errors name the op, the tensor and the shapes") {
  Tensor x = iota({2, 3});
  CHECK_THROWS_WITH_AS(cat({x, iota({2, 4}), iota({2, 4, 1})}, 0),
                       "cat: tensor 1 has shape [2, 4], expected [*, 3] with 2 dims (the shape of tensor 0 except "
                       "along dim 0)",
                       Error);
  CHECK(error_of([&] { cat({x, iota({2, 3, 1})}, 1); }).find("cat: tensor 1 has shape [2, 3, 1], expected [2, *]") !=
        std::string::npos);
  CHECK_THROWS_AS(cat({}), Error);
  CHECK_THROWS_AS(cat({scalar_tensor(1.f)}), Error);
  CHECK_THROWS_AS(cat({x}, 2), Error);
  CHECK(error_of([&] { stack({x, x, x.t()}); }).find("stack: tensor 2 has shape [3, 2], expected [2, 3]") !=
        std::string::npos);
  CHECK(error_of([&] { select(x, 1, 3); }).find("select: index 3 is out of range for dim 1 of size 3") !=
        std::string::npos);
  CHECK_THROWS_AS(select(x, 0, -3), Error);
  CHECK_THROWS_AS(select(scalar_tensor(1.f), 0, 0), Error);
  CHECK(error_of([&] { narrow(x, 1, 2, 2); }).find("narrow: start 2 + length 2 exceeds dim 1 of size 3") !=
        std::string::npos);
  CHECK(error_of([&] { slice(x, 0, 0, 2, 0); }).find("slice: step must be positive") != std::string::npos);
  CHECK(error_of([&] { permute(x, {0, 0}); }).find("permute: dim 0 repeats") != std::string::npos);
  CHECK_THROWS_AS(permute(x, {0}), Error);
  CHECK(error_of([&] { expand(x, {4, 3}); }).find("expand: cannot expand a tensor of shape [2, 3] to [4, 3]") !=
        std::string::npos);
  CHECK_THROWS_AS(expand(x, {3}), Error);
  CHECK_THROWS_AS(expand(x, {-1, 2, 3}), Error);
  CHECK_THROWS_AS(unsqueeze(x, 3), Error);
  CHECK(error_of([&] { split(x, 0); }).find("split: split_size must be positive") != std::string::npos);
  CHECK_THROWS_AS(chunk(x, 0), Error);
}

namespace {

/// Every view, shape and join op applied to x ([3, 4]), in a fixed order.
std::vector<Tensor> all_views(const Tensor& x) {
  return {select(x, 0, 1),
          narrow(x, 1, 1, 2),
          slice(x, 1, 0, 4, 2),
          squeeze(unsqueeze(x, 0), 0),
          unsqueeze(x, -1),
          permute(x, {1, 0}),
          expand(slice(x, 0, 2, 3), {2, 4}),
          x.view({2, 6}),
          reshape(x, {6, 2}),
          flatten(unsqueeze(x, 0)),
          transpose(x, 0, 1),
          x.t().contiguous(),
          x.t().reshape({12}),  // a copy: the transpose is not viewable as 1-D
          cat({x, slice(x, 0, 1, 3)}, 0),
          cat({x.t(), x.t()}, 1),
          stack({x, x}, 1),
          split(x, 3, 1)[1],
          chunk(x, 3, 0)[2]};
}

}  // namespace

TEST_CASE("index: every view, shape and join op on Float64, Int64, Bool and BFloat16") {
  const Tensor xf = iota({3, 4});
  const std::vector<Tensor> want = all_views(xf);
  for (Dtype d : {Dtype::Float64, Dtype::Int64, Dtype::Bool, Dtype::BFloat16}) {
    CAPTURE(dtype_name(d));
    Tensor x = xf.to(d);
    const std::vector<Tensor> got = all_views(x);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].dtype() == d);
      CHECK(got[i].shape() == want[i].shape());
      // the same elements as the Float32 op picks, converted
      CHECK(got[i].to(Dtype::Float32).to_vector<float>() == want[i].to(d).to(Dtype::Float32).to_vector<float>());
    }
    // views share x's storage and version counter: an in-place write through the base shows in them
    const std::vector<size_t> views = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17};
    const uint32_t before = x.version();
    for (size_t i : views) CHECK(got[i].impl()->storage == x.impl()->storage);
    CHECK(got[11].impl()->storage != x.impl()->storage);  // contiguous() of a transpose copies
    x.fill_(1.0);
    for (size_t i : views) {
      CAPTURE(i);
      CHECK(got[i].version() == before + 1);
      CHECK(got[i].to(Dtype::Float32).to_vector<float>() == std::vector<float>(size_t(got[i].numel()), 1.f));
    }
    // and a write through a view bumps the base
    Tensor row = select(x, 0, 2);
    row.zero_();
    CHECK(x.version() == before + 2);
    CHECK(x.to(Dtype::Float32).to_vector<float>()[8] == 0.f);
  }
}

TEST_CASE("index: cat and stack promote mixed dtypes as PyTorch does") {
  Tensor f = tensor({1, 2}, {2});
  Tensor i = tensor(std::vector<int64_t>{3}, {1});
  Tensor b = tensor(std::vector<bool>{true, false}, {2});
  Tensor d = tensor(std::vector<double>{0.5}, {1});
  Tensor h = tensor({4, 5}, {2}).to(Dtype::BFloat16);
  CHECK(cat({f, i}).dtype() == Dtype::Float32);
  CHECK(vals(cat({f, i})) == std::vector<float>{1, 2, 3});
  CHECK(cat({i, b}).dtype() == Dtype::Int64);
  CHECK(cat({i, b}).to_vector<int64_t>() == std::vector<int64_t>{3, 1, 0});
  CHECK(cat({b, b}).dtype() == Dtype::Bool);
  CHECK(cat({f, d}).dtype() == Dtype::Float64);
  CHECK(cat({f, d}).to_vector<double>() == std::vector<double>{1, 2, 0.5});
  CHECK(cat({h, i}).dtype() == Dtype::BFloat16);
  CHECK(cat({h, f}).dtype() == Dtype::Float32);
  CHECK(vals(cat({h, f})) == std::vector<float>{4, 5, 1, 2});
  CHECK(stack({f, b}).dtype() == Dtype::Float32);
  CHECK(vals(stack({f, b})) == std::vector<float>{1, 2, 1, 0});
  // the gradient flows back to each input in its own dtype
  Tensor a32 = tensor({1, 2}, {2}, true);
  Tensor a64 = tensor(std::vector<double>{3}, {1}, true);
  Tensor y = cat({a32, a64});
  CHECK(y.dtype() == Dtype::Float64);
  y.backward(tensor(std::vector<double>{0.5, 0.25, 2}, {3}));
  CHECK(a32.grad().dtype() == Dtype::Float32);
  CHECK(vals(a32.grad()) == std::vector<float>{0.5f, 0.25f});
  CHECK(a64.grad().to_vector<double>() == std::vector<double>{2});
}

TEST_CASE("index: backward of every view, shape and join op in Float64") {
  // each part of a 1-D cat gets its own power-of-two gradient, so every element of
  // dx adds up the parts that use it: a wrong position or weight shows in the sum
  Tensor x = tensor(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3}, true);
  std::vector<Tensor> parts = {
      select(x, 1, 1),                                // 1: x01 x11
      narrow(x, 0, 1, 1),                             // 2: row 1
      permute(x, {1, 0}),                             // 4: all
      slice(x, 1, 0, 3, 2),                           // 8: columns 0, 2
      expand(slice(x, 0, 0, 1), {2, 3}),              // 16: row 0, twice
      stack({x, x}, 2),                               // 32: all, twice
      chunk(x, 2, 0)[1],                              // 64: row 1
      split(x, 2, 1)[1],                              // 128: column 2
      transpose(x, 0, 1).contiguous(),                // 256: all
      squeeze(unsqueeze(x, 0), 0).view({6}),          // 512: all
      reshape(unsqueeze(x.t(), 2), {3, 2}),           // 1024: all (a copy)
  };
  std::vector<Tensor> flat, grads;
  double w = 1;
  for (const Tensor& p : parts) {
    flat.push_back(flatten(p, 0));
    grads.push_back(full({p.numel()}, w, Dtype::Float64));
    w *= 2;
  }
  Tensor y = cat(flat);
  CHECK(y.dtype() == Dtype::Float64);
  y.backward(cat(grads));
  REQUIRE(x.grad().dtype() == Dtype::Float64);
  // all parts: 4 + 2·32 + 256 + 512 + 1024 = 1860
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1860 + 8 + 32, 1860 + 1 + 32, 1860 + 8 + 32 + 128,
                                                            1860 + 2 + 8 + 64, 1860 + 1 + 2 + 64,
                                                            1860 + 2 + 8 + 64 + 128});
}
