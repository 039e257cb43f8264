// tape::dist across processes: run under mpirun with 2 or more ranks
// (tests/dist_test.sh: `mpirun -np 2 build/tests/tape_dist_tests`). Every rank
// runs every case; main.cpp (built with TAPE_TEST_MPI) reports a case as failed
// when it failed on any rank.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

namespace {

int R() { return dist::rank(); }
int N() { return dist::world_size(); }

std::shared_ptr<nn::Sequential> make_net(uint64_t seed) {
  manual_seed(seed);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Linear>(6, 16));
  net->push_back(std::make_shared<nn::Tanh>());
  net->push_back(std::make_shared<nn::Linear>(16, 16));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::Linear>(16, 4));
  net->to(Dtype::Float64);
  return net;
}

/// All parameters of `m`, flattened into one Float64 vector.
std::vector<double> flat(nn::Module& m) {
  std::vector<double> out;
  for (const Tensor& p : m.parameters()) {
    auto v = p.contiguous().to_vector<double>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// Rows r, r + N, r + 2N, ... of t: this rank's share of a global batch.
Tensor share(const Tensor& t) {
  std::vector<int64_t> rows;
  for (int64_t i = R(); i < t.size(0); i += N()) rows.push_back(i);
  return t.index_select(0, tensor(rows, {int64_t(rows.size())}));
}

}  // namespace

TEST_CASE("dist: ranks and world") {
  CHECK(dist::is_initialized());
  CHECK(N() >= 2);
  CHECK(R() >= 0);
  CHECK(R() < N());
  auto ranks = dist::all_gather(full({1}, double(R()), Dtype::Int64));
  REQUIRE(int(ranks.size()) == N());
  for (int k = 0; k < N(); ++k) CHECK(ranks[size_t(k)].item<int64_t>() == k);
}

TEST_CASE("dist::all_reduce: Sum, Mean, Max, Min on Float32, Float64 and Int64, in place") {
  const double n = N(), r = R();
  Tensor f = full({2, 3}, r + 1);
  dist::all_reduce(f);
  for (float v : f.to_vector<float>()) CHECK(v == float(n * (n + 1) / 2));
  Tensor d = full({4}, r + 1, Dtype::Float64);
  dist::all_reduce(d, dist::ReduceOp::Mean);
  for (double v : d.to_vector<double>()) CHECK(v == doctest::Approx((n + 1) / 2).epsilon(1e-15));
  Tensor i = full({3}, 10 * r - 5, Dtype::Int64);
  Tensor j = i.clone();
  dist::all_reduce(i, dist::ReduceOp::Max);
  dist::all_reduce(j, dist::ReduceOp::Min);
  for (int64_t v : i.to_vector<int64_t>()) CHECK(v == 10 * (N() - 1) - 5);
  for (int64_t v : j.to_vector<int64_t>()) CHECK(v == -5);
  // Int64 Mean rounds toward zero: sum of (r + 1) = N(N+1)/2, over N
  Tensor m = full({1}, r + 1, Dtype::Int64);
  dist::all_reduce(m, dist::ReduceOp::Mean);
  CHECK(m.item<int64_t>() == (N() * (N() + 1) / 2) / N());
}

TEST_CASE("dist::all_reduce on a strided view writes the tensor's own storage") {
  Tensor base = Tensor::empty({2, 3});
  for (int k = 0; k < 6; ++k) base.data<float>()[k] = float(k + 10 * R());
  Tensor view = base.transpose(0, 1);  // [3, 2], not contiguous
  REQUIRE_FALSE(view.is_contiguous());
  Tensor alias = base;
  dist::all_reduce(view);
  for (int k = 0; k < 6; ++k) {
    float expect = 0;
    for (int q = 0; q < N(); ++q) expect += float(k + 10 * q);
    CHECK(alias.data<float>()[k] == expect);
  }
}

TEST_CASE("dist::all_reduce_async completes on wait") {
  Tensor t = full({1000}, double(R() + 1));
  dist::Work w = dist::all_reduce_async(t, dist::ReduceOp::Sum);
  w.wait();
  CHECK(w.is_completed());
  CHECK(t.to_vector<float>()[999] == float(N() * (N() + 1) / 2));
}

TEST_CASE("dist::broadcast and all_gather") {
  Tensor t = full({2, 2}, double(R()), Dtype::Float64);
  dist::broadcast(t, N() - 1);
  for (double v : t.to_vector<double>()) CHECK(v == N() - 1);
  Tensor s = Tensor::empty({3}, Dtype::Int64);
  for (int k = 0; k < 3; ++k) s.data<int64_t>()[k] = 100 * R() + k;
  auto parts = dist::all_gather(s.narrow(0, 1, 2));  // a view
  REQUIRE(int(parts.size()) == N());
  for (int q = 0; q < N(); ++q) CHECK(parts[size_t(q)].to_vector<int64_t>() == std::vector<int64_t>{100 * q + 1, 100 * q + 2});
  CHECK_THROWS_WITH_AS(dist::broadcast(t, N()), Contains("is outside [0, world_size"), Error);
  dist::barrier();
}

TEST_CASE("DistributedDataParallel: N ranks with 1/N of each batch train like one process with the whole batch") {
  // a global batch of 12·N samples, 6 SGD-momentum steps; Float64 so "within
  // rounding" is tight
  Generator g(5);
  Tensor X = randn({12 * int64_t(N()), 6}, Dtype::Float64, g);
  std::vector<int64_t> labels;
  for (int64_t k = 0; k < X.size(0); ++k) labels.push_back(k % 4);
  Tensor Y = tensor(labels, {int64_t(labels.size())});

  for (auto [bucket, as_view] : {std::pair{size_t(25) << 20, false}, {size_t(300), false}, {size_t(300), true}}) {
    CAPTURE(bucket);
    CAPTURE(as_view);
    // every rank but 0 starts from other weights: the construction broadcasts rank 0's
    auto local = make_net(R() == 0 ? 1 : 100 + uint64_t(R()));
    dist::DistributedDataParallel ddp(local, bucket);
    ddp.set_gradient_as_bucket_view(as_view);
    CHECK(flat(*local) == flat(*make_net(1)));
    optim::SGD opt(ddp.parameters(), 0.1, 0.9);
    auto base = make_net(1);
    optim::SGD base_opt(base->parameters(), 0.1, 0.9);
    const Tensor x = share(X), y = share(Y);
    for (int step = 0; step < 6; ++step) {
      Tensor loss = cross_entropy(ddp(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      Tensor full_loss = cross_entropy((*base)(X), Y);
      base_opt.zero_grad();
      full_loss.backward();
      base_opt.step();
    }
    const std::vector<double> mine = flat(*local), one = flat(*base);
    double worst = 0;
    for (size_t k = 0; k < mine.size(); ++k) worst = std::max(worst, std::abs(mine[k] - one[k]));
    CHECK(std::isfinite(worst));
    CHECK(worst < 1e-12);
    // bit-identical on every rank
    Tensor p = tensor(mine, {int64_t(mine.size())});
    auto all = dist::all_gather(p);
    for (const Tensor& q : all) CHECK(std::memcmp(q.data<double>(), p.data<double>(), mine.size() * 8) == 0);
    if (bucket == 300) {
      // gradient as bucket view: .grad() aliases the bucket, so it reads the average
      for (const Tensor& q : local->parameters()) CHECK(q.grad().defined());
      CHECK(ddp.stats().buckets > 2);
      CHECK(ddp.stats().launched_early >= 1);  // a bucket started while backward went on
    }
    CHECK(ddp.stats().steps == 6);
  }
}

namespace {
/// Uses `extra` only when `use_extra`: rank-dependent control flow.
struct Branchy : nn::Module {
  Branchy(bool use) : use_extra(use) {
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
    extra = register_module("extra", std::make_shared<nn::Linear>(2, 2));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*fc)(x);
    return use_extra ? (*extra)(h) : h;
  }
  bool use_extra;
  std::shared_ptr<nn::Linear> fc, extra;
};
}  // namespace

TEST_CASE("DistributedDataParallel: a parameter unused on some ranks counts as a zero gradient there") {
  auto m = std::make_shared<Branchy>(R() == 0);
  dist::DistributedDataParallel ddp(m, 1 << 20);
  Tensor x = full({2, 3}, 1.0);
  // rank 0's local gradient of extra.bias: d sum(extra(h)) / d bias = batch size = 2
  sum(ddp(x)).backward();
  REQUIRE(m->extra->bias.grad().defined());
  for (float v : m->extra->bias.grad().to_vector<float>()) CHECK(v == doctest::Approx(2.0 / N()));
}

TEST_CASE("DistributedDataParallel: rank 0's buffers reach every rank at construction and at each forward") {
  manual_seed(2);
  auto bn = std::make_shared<nn::BatchNorm1d>(3);
  bn->running_mean.fill_(double(R()));
  dist::DistributedDataParallel ddp(bn);
  for (float v : bn->running_mean.to_vector<float>()) CHECK(v == 0.f);
  bn->running_var.fill_(double(R() + 1));
  Tensor x = full({4, 3}, 2.0);
  ddp(x);  // training: the forward first takes rank 0's running_var (1), then updates it
  for (float v : bn->running_var.to_vector<float>()) CHECK(v == doctest::Approx(0.9));
}

TEST_CASE("DistributedDataParallel: different models on the ranks are an error on every rank") {
  auto m = std::make_shared<nn::Linear>(4, R() == 0 ? 2 : 3);
  CHECK_THROWS_WITH_AS(dist::DistributedDataParallel{m}, Contains("differs from rank 0's"), Error);
}

TEST_CASE("DataLoader {.rank, .world_size} from the job: disjoint shards covering the epoch") {
  data::TensorDataset ds{Tensor::empty({37, 1}), Tensor::empty({37}, Dtype::Int64)};
  for (int k = 0; k < 37; ++k) ds.images.data<float>()[k] = float(k), ds.labels.data<int64_t>()[k] = k;
  data::DataLoader l(ds, {.batch_size = 4, .shuffle = true, .seed = 9, .rank = R(), .world_size = N()});
  std::vector<int64_t> mine;
  for (auto& b : l)
    for (int64_t v : b.y.to_vector<int64_t>()) mine.push_back(v);
  const int64_t per = (37 + N() - 1) / N();
  REQUIRE(int64_t(mine.size()) == per);
  auto all = dist::all_gather(tensor(mine, {per}));
  std::multiset<int64_t> seen;
  for (const Tensor& t : all)
    for (int64_t v : t.to_vector<int64_t>()) seen.insert(v);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 37);  // all covered
  CHECK(int64_t(seen.size()) == per * N());                         // padded by at most N - 1
}
