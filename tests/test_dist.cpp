// tape::dist in one process (the 2-rank tests are tests/dist/, run under mpirun
// by tests/dist_test.sh): the world of one, the engine's final callbacks that
// DistributedDataParallel relies on, DataLoader sharding, DDP's buckets.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <tape/tape.hpp>

#include "error_of.hpp"

using namespace tape;
using doctest::Contains;
using tape_test::error_of;

namespace {

/// Initialises a world of one for a test case (outside mpirun init never starts MPI).
struct WorldOfOne {
  WorldOfOne() { dist::init(); }
  ~WorldOfOne() { dist::finalize(); }
};

struct Squares : data::Dataset {
  explicit Squares(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  data::Example get(int64_t i) const override { return {full({1}, double(i)), full({1}, double(i * i))}; }
  int64_t n_;
};

std::vector<int64_t> ids(const data::Batch& b) {
  std::vector<int64_t> out;
  for (float v : b.x.to_vector<float>()) out.push_back(int64_t(v));
  return out;
}

}  // namespace

TEST_CASE("dist: before init, a world of one after it; collectives are no-ops there") {
  CHECK_FALSE(dist::is_initialized());
  CHECK(dist::world_size() == 1);
  CHECK(dist::rank() == 0);
  Tensor t = tensor(std::vector<float>{1, 2, 3}, {3});
  CHECK_THROWS_WITH_AS(dist::all_reduce(t), Contains("call dist::init() first"), Error);
  {
    WorldOfOne w;
    CHECK(dist::is_initialized());
    CHECK(dist::world_size() == 1);
    CHECK_THROWS_WITH_AS(dist::init(), Contains("already initialised"), Error);
    for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Mean, dist::ReduceOp::Max, dist::ReduceOp::Min}) {
      dist::all_reduce(t, op);
      CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3});
    }
    dist::broadcast(t, 0);
    CHECK_THROWS_WITH_AS(dist::broadcast(t, 1), Contains("root 1 is outside [0, world_size 1)"), Error);
    auto parts = dist::all_gather(t);
    REQUIRE(parts.size() == 1);
    CHECK(parts[0].to_vector<float>() == std::vector<float>{1, 2, 3});
    parts[0].data<float>()[0] = 9;  // a copy, not the input
    CHECK(t.to_vector<float>()[0] == 1);
    dist::barrier();
    dist::Work w1 = dist::all_reduce_async(t);
    CHECK(w1.is_completed());
    Tensor b = full({2}, 1.0, Dtype::Bool);
    CHECK_THROWS_WITH_AS(dist::all_reduce(b), Contains("[2] Bool is not supported"), Error);
  }
  CHECK_FALSE(dist::is_initialized());
}

TEST_CASE("dist: timeout is settable and checked") {
  const double before = dist::timeout();
  dist::set_timeout(12.5);
  CHECK(dist::timeout() == 12.5);
  CHECK_THROWS_WITH_AS(dist::set_timeout(0), Contains("must be positive"), Error);
  dist::set_timeout(before);
  CHECK(!dist::backend().empty());
}

TEST_CASE("autograd::queue_callback runs after the last node, once, in order") {
  CHECK_THROWS_WITH_AS(autograd::queue_callback([] {}), Contains("no backward pass is running"), Error);
  Tensor a = tensor(std::vector<double>{1, 2}, {2}).requires_grad_();
  Tensor b = tensor(std::vector<double>{3, 4}, {2}).requires_grad_();
  std::vector<std::string> log;
  // the callback sees both leaves' gradients, although a's hook fires first
  a.register_post_accumulate_grad_hook([&](const Tensor&) {
    log.push_back("a");
    autograd::queue_callback([&] {
      log.push_back(str_cat("end:", b.grad().defined() ? "b" : "-"));
      autograd::queue_callback([&] { log.push_back("nested"); });
    });
  });
  b.register_post_accumulate_grad_hook([&](const Tensor&) { log.push_back("b"); });
  Tensor loss = sum(mul(mul(a, a), b));
  loss.backward();
  REQUIRE(log.size() == 4);
  CHECK(log[2] == "end:b");
  CHECK(log[3] == "nested");
  std::set<std::string> hooks(log.begin(), log.begin() + 2);
  CHECK(hooks == std::set<std::string>{"a", "b"});
}

TEST_CASE("DataLoader {.rank, .world_size}: disjoint shards; one step of all ranks is one global batch") {
  auto ds = std::make_shared<Squares>(40);
  const int world = 4;
  const int64_t per_rank = 3;  // global batch 12
  data::DataLoader global(ds, {.batch_size = per_rank * world, .shuffle = true, .seed = 7});
  std::vector<data::DataLoader> ranks;
  for (int r = 0; r < world; ++r)
    ranks.emplace_back(ds, data::DataLoaderOptions{.batch_size = per_rank, .shuffle = true, .seed = 7, .rank = r,
                                                   .world_size = world});
  for (int64_t epoch : {0, 3}) {
    global.set_epoch(epoch);
    for (auto& l : ranks) l.set_epoch(epoch);
    std::vector<data::Batch> all;
    for (auto& b : global) all.push_back(b);
    std::vector<std::vector<data::Batch>> shard(world);
    std::multiset<int64_t> seen;
    for (int r = 0; r < world; ++r) {
      CHECK(ranks[size_t(r)].num_samples() == 10);
      for (auto& b : ranks[size_t(r)]) shard[size_t(r)].push_back(b);
      CHECK(shard[size_t(r)].size() == all.size());
    }
    for (size_t s = 0; s < all.size(); ++s) {
      std::multiset<int64_t> step;
      for (int r = 0; r < world; ++r)
        for (int64_t i : ids(shard[size_t(r)][s])) step.insert(i), seen.insert(i);
      auto g = ids(all[s]);
      CHECK(step == std::multiset<int64_t>(g.begin(), g.end()));
    }
    CHECK(seen.size() == 40);
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 40);  // disjoint, every sample once
  }
}

TEST_CASE("DataLoader sharding pads with the epoch's first samples, like DistributedSampler") {
  auto ds = std::make_shared<Squares>(10);
  data::DataLoader plain(ds, {.batch_size = 10, .shuffle = true, .seed = 3});
  const std::vector<int64_t> order = plain.permutation(0);
  // 10 samples over 4 ranks: 3 each, the order padded with its first 2 samples
  for (int r = 0; r < 4; ++r) {
    data::DataLoader l(ds, {.batch_size = 2, .shuffle = true, .seed = 3, .rank = r, .world_size = 4});
    const std::vector<int64_t> mine = l.indices(0);
    REQUIRE(mine.size() == 3);
    for (size_t j = 0; j < 3; ++j) CHECK(mine[j] == order[(size_t(r) + 4 * j) % 10]);
    CHECK(l.num_batches() == 2);
  }
  CHECK(error_of([&] { data::DataLoader(ds, {.rank = 2, .world_size = 2}); }) ==
        "DataLoader: rank 2 is outside [0, world_size 2)");
  CHECK(error_of([&] { data::DataLoader(ds, {.world_size = 0}); }) == "DataLoader: world_size must be >= 1, got 0");
}

TEST_CASE("DistributedDataParallel in a world of one: PyTorch's names, buckets in reverse order, plain gradients") {
  WorldOfOne w;
  manual_seed(3);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Linear>(4, 8));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::Linear>(8, 3));
  // buckets of at most 40 bytes (10 floats): one per parameter but the first bias and weight
  dist::DistributedDataParallel ddp(net, 40);
  auto names = ddp.bucket_names();
  REQUIRE(names.size() == 4);
  CHECK(names[0] == std::vector<std::string>{"2.bias"});
  CHECK(names[1] == std::vector<std::string>{"2.weight"});
  CHECK(names[2] == std::vector<std::string>{"0.bias"});
  CHECK(names[3] == std::vector<std::string>{"0.weight"});
  CHECK(ddp.stats().bytes == (4 * 8 + 8 + 8 * 3 + 3) * 4);
  auto sd = ddp.state_dict();
  CHECK(sd.count("module.0.weight") == 1);
  CHECK(sd.count("module.2.bias") == 1);
  CHECK(&ddp.module() == net.get());

  Tensor x = randn({5, 4});
  Tensor loss = sum(ddp(x));
  loss.backward();
  std::vector<Tensor> g1;
  for (Tensor p : net->parameters()) g1.push_back(p.grad().clone()), p.set_grad({});
  Tensor loss2 = sum((*net)(x));
  loss2.backward();
  auto params = net->parameters();
  for (size_t k = 0; k < params.size(); ++k) CHECK(params[k].grad().to_vector<float>() == g1[k].to_vector<float>());
}
