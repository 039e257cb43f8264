// Gather & scatter (index_select, gather, scatter_add): forward values computed
// by hand on every dtype, strided inputs and indices, backward in Float64,
// 0-element cases, the multi-threaded paths, and error messages.
#include <doctest/doctest.h>

#include <string>
#include <tape/tape.hpp>
#include <vector>

#include "error_of.hpp"

using namespace tape;
using tape_test::error_of;

namespace {

/// 0, 1, ..., n-1 of `shape` in `dtype`.
Tensor iota(const Shape& shape, Dtype dtype = Dtype::Float32) {
  return reshape(arange(shape_numel(shape), dtype), shape).detach();
}
Tensor ints(std::vector<int64_t> v, Shape shape) { return tensor(std::move(v), std::move(shape)); }
std::vector<float> vals(const Tensor& t) { return t.to(Dtype::Float32).to_vector<float>(); }
std::vector<double> dvals(const Tensor& t) { return t.to_vector<double>(); }
Tensor f64(std::vector<double> v, Shape shape, bool requires_grad = false) {
  return tensor(std::move(v), std::move(shape), requires_grad);
}

}  // namespace

TEST_CASE("gather: index_select picks slices, repeats included, on every dtype") {
  Tensor x = iota({3, 4});  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  Tensor rows = index_select(x, 0, ints({2, 0, 2}, {3}));
  CHECK(rows.shape() == Shape{3, 4});
  CHECK(vals(rows) == std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(vals(index_select(x, -1, ints({3, 1}, {2}))) == std::vector<float>{3, 1, 7, 5, 11, 9});
  CHECK(vals(index_select(x, 1, scalar_tensor(2, Dtype::Int64))) == std::vector<float>{2, 6, 10});  // 0-D index

  for (Dtype d : {Dtype::Float64, Dtype::Int64, Dtype::Bool, Dtype::BFloat16}) {
    CAPTURE(dtype_name(d));
    Tensor y = index_select(iota({3, 4}, Dtype::Float32).to(d), 0, ints({1, 1}, {2}));
    CHECK(y.dtype() == d);
    CHECK(vals(y) == vals(tensor({4, 5, 6, 7, 4, 5, 6, 7}, {2, 4}).to(d)));
  }
  CHECK(index_select(iota({2, 3}, Dtype::Int64), 1, ints({2, 0}, {2})).to_vector<int64_t>() ==
        std::vector<int64_t>{2, 0, 5, 3});

  // a strided input and a strided index (every other element of [0, 9, 2, 9])
  Tensor tt = x.t();  // [4, 3]
  Tensor idx = slice(ints({0, 9, 2, 9}, {4}), 0, 0, 4, 2);
  CHECK(!idx.is_contiguous());
  CHECK(vals(index_select(tt, 0, idx)) == std::vector<float>{0, 4, 8, 2, 6, 10});
  CHECK(vals(index_select(tt, 1, idx)) == std::vector<float>{0, 8, 1, 9, 2, 10, 3, 11});

  // rows of ≥ 16 elements are copied whole: with dims before and after `dim`,
  // and with the dims before `dim` permuted (strides not row-major)
  Tensor w = iota({2, 3, 20});
  Tensor ws = index_select(w, 1, ints({2, 0}, {2}));
  CHECK(ws.shape() == Shape{2, 2, 20});
  CHECK(vals(select(select(ws, 0, 1), 0, 0))[0] == 100.f);  // w[1][2][0] = 1·60 + 2·20
  CHECK(vals(select(select(ws, 0, 0), 0, 1))[19] == 19.f);  // w[0][0][19]
  Tensor pw = permute(w, {1, 0, 2});                         // [3, 2, 20], strides [20, 60, 1]
  Tensor ps = index_select(pw, 1, ints({1}, {1}));
  CHECK(vals(ps) == vals(pw.slice(1, 1, 2).contiguous()));
  CHECK(vals(index_select(w, 0, ints({1, 0}, {2}))) == vals(cat({select(w, 0, 1).unsqueeze(0), select(w, 0, 0).unsqueeze(0)})));
}

TEST_CASE("gather: gather reads t at the index along dim") {
  Tensor t = tensor({1, 2, 3, 4}, {2, 2});
  CHECK(vals(gather(t, 1, ints({0, 0, 1, 0}, {2, 2}))) == std::vector<float>{1, 1, 4, 3});  // PyTorch's example
  CHECK(vals(gather(t, 0, ints({1, 0}, {1, 2}))) == std::vector<float>{3, 2});
  CHECK(vals(gather(t, -2, ints({1, 1, 0, 0}, {2, 2}))) == std::vector<float>{3, 4, 1, 2});
  // the index may be smaller than t on the other dims
  Tensor x = iota({3, 4});
  Tensor g = gather(x, 1, ints({3, 0}, {2, 1}));
  CHECK(g.shape() == Shape{2, 1});
  CHECK(vals(g) == std::vector<float>{3, 4});
  // every dtype
  for (Dtype d : {Dtype::Float64, Dtype::Int64, Dtype::Bool, Dtype::BFloat16}) {
    CAPTURE(dtype_name(d));
    Tensor y = gather(x.to(d), 0, ints({2, 0, 1, 0}, {1, 4}));
    CHECK(y.dtype() == d);
    CHECK(vals(y) == vals(tensor({8, 1, 6, 3}, {1, 4}).to(d)));
  }
  CHECK(gather(iota({2, 2}, Dtype::Int64), 1, ints({1, 1, 0, 1}, {2, 2})).to_vector<int64_t>() ==
        std::vector<int64_t>{1, 1, 2, 3});
  // strided t and index
  Tensor tt = x.t();                                                       // [4, 3]: [[0 4 8] [1 5 9] ...]
  Tensor idx = ints({2, 7, 0, 7, 1, 7, 1, 7}, {4, 2}).slice(1, 0, 1);      // [[2] [0] [1] [1]], stride 2
  CHECK(!idx.is_contiguous());
  CHECK(vals(gather(tt, 1, idx)) == std::vector<float>{8, 1, 6, 7});
  // 0-D
  CHECK(gather(scalar_tensor(5.0, Dtype::Float64), 0, scalar_tensor(0, Dtype::Int64)).item<double>() == 5.0);
  Tensor s = scalar_tensor(7.0, Dtype::Float64).requires_grad_();
  Tensor s1 = index_select(s, -1, ints({0}, {1}));
  CHECK(s1.dim() == 0);
  CHECK(s1.item<double>() == 7.0);
  s1.backward();
  CHECK(s.grad().item<double>() == 1.0);
}

TEST_CASE("gather: scatter_add accumulates src at the index, repeats included") {
  // PyTorch's example: zeros(3, 5).scatter_add(0, index, ones(2, 5))
  Tensor idx = ints({0, 1, 2, 0, 0, 0, 1, 2, 2, 2}, {2, 5});
  Tensor y = scatter_add(zeros({3, 5}), 0, idx, ones({2, 5}));
  CHECK(vals(y) == std::vector<float>{2, 0, 0, 1, 1, 0, 2, 0, 0, 0, 0, 0, 2, 1, 1});
  // the first row of the index only, and t's values are kept
  Tensor t = iota({3, 5});
  Tensor y1 = scatter_add(t, 0, slice(idx, 0, 0, 1), ones({2, 5}));
  CHECK(vals(y1) == std::vector<float>{1, 1, 2, 4, 5, 5, 7, 7, 8, 9, 10, 11, 13, 13, 14});
  CHECK(vals(t)[0] == 0.f);  // t itself is unchanged
  // along dim 1 with negative dim, Int64 and Float64
  Tensor yi = scatter_add(zeros({2, 3}, Dtype::Int64), -1, ints({2, 2, 0, 1, 1, 1}, {2, 3}),
                          ints({10, 20, 30, 1, 2, 3}, {2, 3}));
  CHECK(yi.dtype() == Dtype::Int64);
  CHECK(yi.to_vector<int64_t>() == std::vector<int64_t>{30, 0, 30, 0, 6, 0});
  Tensor yd = scatter_add(f64({1, 1, 1}, {3}), 0, ints({2, 2}, {2}), f64({0.25, 0.5, 100}, {3}));
  CHECK(dvals(yd) == std::vector<double>{1, 1, 1.75});
  // strided t, src and index
  Tensor src = iota({2, 3}).t();  // [3, 2]: [[0 3] [1 4] [2 5]]
  Tensor ys = scatter_add(zeros({2, 2}).t(), 0, ints({1, 9, 0, 9, 1, 9, 0, 9}, {2, 4}).slice(1, 0, 4, 2), src);
  // index [[1 0] [1 0]]: out[1][0] += 0 + 1, out[0][1] += 3 + 4
  CHECK(vals(ys) == std::vector<float>{0, 7, 1, 0});
}

TEST_CASE("gather: backward in Float64, by hand") {
  // index_select: dx = g added back at the picked rows (row 2 picked twice)
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {3, 2}, true);
  index_select(x, 0, ints({2, 0, 2}, {3})).backward(f64({1, 2, 3, 4, 5, 6}, {3, 2}));
  CHECK(x.grad().dtype() == Dtype::Float64);
  CHECK(dvals(x.grad()) == std::vector<double>{3, 4, 0, 0, 6, 8});
  Tensor xc = f64({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  index_select(xc, 1, ints({1, 1}, {2})).backward(f64({0.5, 0.25, 1, 2}, {2, 2}));
  CHECK(dvals(xc.grad()) == std::vector<double>{0, 0.75, 0, 0, 3, 0});

  // gather: dt = g scattered back, repeats add
  Tensor t = f64({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  gather(t, 1, ints({0, 0, 2, 1, 1, 1}, {2, 3})).backward(f64({1, 2, 3, 4, 5, 6}, {2, 3}));
  CHECK(dvals(t.grad()) == std::vector<double>{3, 0, 3, 0, 15, 0});
  Tensor t0 = f64({1, 2, 3, 4}, {2, 2}, true);
  gather(t0, 0, ints({1, 1}, {1, 2})).backward(f64({7, 8}, {1, 2}));  // smaller index: zeros elsewhere
  CHECK(dvals(t0.grad()) == std::vector<double>{0, 0, 7, 8});

  // scatter_add: dt = g, dsrc = g read at the index (0 where src reaches past the index)
  Tensor base = f64({0, 0, 0, 0, 0, 0}, {2, 3}, true);
  Tensor src = f64({1, 1, 1, 1, 1, 1}, {2, 3}, true);
  Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  scatter_add(base, 1, ints({2, 0, 1, 1}, {2, 2}), src).backward(g);
  CHECK(dvals(base.grad()) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(dvals(src.grad()) == std::vector<double>{3, 1, 0, 5, 5, 0});
  CHECK(std::string(scatter_add(base, 1, ints({0}, {1, 1}), src).grad_fn_name()) == "ScatterAddBackward");
  CHECK(std::string(gather(t, 1, ints({0}, {1, 1})).grad_fn_name()) == "GatherBackward");
  CHECK(std::string(index_select(t, 1, ints({0}, {1})).grad_fn_name()) == "IndexSelectBackward");

  // Float32 agrees
  Tensor t32 = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  gather(t32, 1, ints({0, 0, 2, 1, 1, 1}, {2, 3})).backward(tensor({1, 2, 3, 4, 5, 6}, {2, 3}));
  CHECK(vals(t32.grad()) == std::vector<float>{3, 0, 3, 0, 15, 0});
}

TEST_CASE("gather: 0-element cases") {
  Tensor x = iota({3, 4});
  Tensor none = tensor(std::vector<int64_t>{}, {0});
  CHECK(index_select(x, 0, none).shape() == Shape{0, 4});
  CHECK(index_select(x, 1, none).shape() == Shape{3, 0});
  CHECK(index_select(zeros({0, 3}), 1, ints({2}, {1})).shape() == Shape{0, 1});
  CHECK(gather(x, 1, tensor(std::vector<int64_t>{}, {3, 0})).shape() == Shape{3, 0});
  CHECK(gather(zeros({0, 4}), 0, tensor(std::vector<int64_t>{}, {0, 4})).shape() == Shape{0, 4});
  Tensor same = scatter_add(x, 1, tensor(std::vector<int64_t>{}, {3, 0}), zeros({3, 0}));
  CHECK(vals(same) == vals(x));
  // backward through an empty pick gives zeros
  Tensor xg = f64({1, 2}, {2}, true);
  index_select(xg, 0, none).backward(f64({}, {0}));
  CHECK(dvals(xg.grad()) == std::vector<double>{0, 0});
  CHECK(error_of([&] { index_select(zeros({0, 3}), 0, ints({0}, {1})); })
            .find("index_select: index 0 is out of range for dim 0 of size 0") != std::string::npos);
}

TEST_CASE("gather: large inputs (several threads) match the element-by-element definition") {
  const int64_t n = 300, m = 200;
  std::vector<int64_t> iv(size_t(n * m));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) iv[size_t(i * m + j)] = (i * 7 + j * 3) % m;
  Tensor x = iota({n, m});
  Tensor g = gather(x, 1, ints(iv, {n, m}));
  const std::vector<float> gv = vals(g);
  bool all = true;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) all = all && gv[size_t(i * m + j)] == float(i * m + iv[size_t(i * m + j)]);
  CHECK(all);
  // index_add of ones: each of 10 slots gets m / 10 = 20 along dim 1, n / 10 = 30 along dim 0
  std::vector<int64_t> mod(size_t(n * m));
  for (int64_t k = 0; k < n * m; ++k) mod[size_t(k)] = (k % m) % 10;
  Tensor s1 = scatter_add(zeros({n, 10}, Dtype::Int64), 1, ints(mod, {n, m}), ones({n, m}, Dtype::Int64));
  CHECK(s1.to_vector<int64_t>() == std::vector<int64_t>(size_t(n * 10), 20));
  for (int64_t k = 0; k < n * m; ++k) mod[size_t(k)] = (k / m) % 10;
  Tensor s0 = scatter_add(zeros({10, m}, Dtype::Int64), 0, ints(mod, {n, m}), ones({n, m}, Dtype::Int64));
  CHECK(s0.to_vector<int64_t>() == std::vector<int64_t>(size_t(10 * m), 30));
  // index_select of 1000 rows of 64
  std::vector<int64_t> rows(1000);
  for (size_t k = 0; k < rows.size(); ++k) rows[k] = int64_t(k * 37 % 500);
  Tensor table = iota({500, 64}, Dtype::Float64);
  const std::vector<double> picked = dvals(index_select(table, 0, ints(rows, {1000})));
  bool rows_ok = true;
  for (size_t k = 0; k < rows.size(); ++k)
    for (size_t j = 0; j < 64; ++j) rows_ok = rows_ok && picked[k * 64 + j] == double(rows[k] * 64 + int64_t(j));
  CHECK(rows_ok);
}

TEST_CASE("gather: errors name the op, the index value and the shapes") {
  Tensor x = iota({3, 4});
  CHECK_THROWS_WITH_AS(index_select(x, 0, tensor({0, 1}, {2})),
                       "index_select: index must be Int64, got Float32 tensor of shape [2]", Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, ints({0, 5, 1}, {3})),
                       "index_select: index 5 is out of range for dim 0 of size 3 (input of shape [3, 4])", Error);
  CHECK(error_of([&] { index_select(x, 1, ints({-1}, {1})); }).find("index -1 is out of range for dim 1 of size 4") !=
        std::string::npos);
  CHECK(error_of([&] { index_select(x, 0, ints({0, 1}, {1, 2})); }).find("index_select: index must be 1-D") !=
        std::string::npos);
  CHECK_THROWS_AS(index_select(x, 2, ints({0}, {1})), Error);
  CHECK(error_of([&] { index_select(scalar_tensor(1.f), 0, ints({1}, {1})); })
            .find("index_select: index 1 is out of range for dim 0 of size 1") != std::string::npos);
  CHECK_THROWS_WITH_AS(index_select(scalar_tensor(1.f), 0, ints({0, 0}, {2})),
                       "index_select: a 0-D input takes an index of 1 element, got shape [2]", Error);

  CHECK_THROWS_WITH_AS(gather(x, 1, tensor({0, 1}, {1, 2})),
                       "gather: index must be Int64, got Float32 tensor of shape [1, 2]", Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, ints({0, 1}, {2})),
                       "gather: index has 1 dims (shape [2]) but the input has 2 (shape [3, 4])", Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, ints({0, 1, 2, 3}, {4, 1})),
                       "gather: index of shape [4, 1] is larger than the input [3, 4] at dim 0", Error);
  CHECK_THROWS_WITH_AS(gather(x, 0, ints({0, 3}, {1, 2})),
                       "gather: index 3 is out of range for dim 0 of size 3 (input of shape [3, 4])", Error);

  CHECK_THROWS_WITH_AS(scatter_add(x, 0, ints({0}, {1, 1}), ones({1, 1}, Dtype::Float64)),
                       "scatter_add: src has dtype Float64 but the input is Float32 (convert one with .to(dtype))",
                       Error);
  CHECK_THROWS_WITH_AS(scatter_add(x, 0, ints({0, 0}, {1, 2}), ones({1, 1})),
                       "scatter_add: index of shape [1, 2] is larger than src [1, 1] at dim 1", Error);
  CHECK_THROWS_WITH_AS(scatter_add(x, 1, ints({4}, {1, 1}), ones({1, 1})),
                       "scatter_add: index 4 is out of range for dim 1 of size 4 (input of shape [3, 4])", Error);
  CHECK(error_of([&] { scatter_add(x, 0, ints({0}, {1}), ones({1})); }).find("scatter_add: src has 1 dims") !=
        std::string::npos);
  CHECK(error_of([&] { scatter_add(x.to(Dtype::Bool), 0, ints({0}, {1, 1}), ones({1, 1}, Dtype::Bool)); })
            .find("scatter_add") != std::string::npos);
}
