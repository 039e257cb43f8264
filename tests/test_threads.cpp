// Threads: two user threads training, backpropagating and drawing random
// numbers at the same time get exactly what a sequential run gets.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include <tape/tape.hpp>

using namespace tape;

namespace {

/// The bits of every float of every tensor, for bit-exact comparisons.
std::vector<uint32_t> bits(const std::vector<Tensor>& ts) {
  std::vector<uint32_t> out;
  for (const Tensor& t : ts)
    for (float v : t.contiguous().to_vector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
  return out;
}

/// Runs f(0) and f(1) on two std::threads at once.
void in_two_threads(const std::function<void(int)>& f) {
  std::thread a(f, 0), b(f, 1);
  a.join();
  b.join();
}

/// Sets the thread count for a scope and restores the previous one.
struct ThreadCount {
  explicit ThreadCount(int n) : saved(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
  int saved;
};

/// The result of training one small conv + linear model for a few Adam steps.
struct Trained {
  std::vector<uint32_t> grads, params;
};

/// conv → relu → pool → conv → relu → linear, parameters drawn from `seed`
/// (a local Generator, so the result does not depend on other threads), and
/// `steps` Adam steps on batches drawn from that generator too.
Trained train(uint64_t seed, int steps) {
  Generator g(seed);
  nn::Sequential model{std::make_shared<nn::Conv2d>(1, 6, 5, 1, 2), std::make_shared<nn::ReLU>(),
                       std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Conv2d>(6, 8, 3, 1, 1),
                       std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(),
                       std::make_shared<nn::Linear>(8 * 14 * 14, 10)};
  std::vector<Tensor> params;
  for (auto& [name, p] : model.named_parameters()) params.push_back(p);
  {
    NoGradGuard no_grad;
    for (Tensor& p : params) p.copy_(randn(p.shape(), g) * 0.1f);
  }
  optim::Adam opt(params, 1e-2);
  Trained out;
  for (int k = 0; k < steps; ++k) {
    const Tensor x = randn({16, 1, 28, 28}, g);
    std::vector<int64_t> labels(16);
    for (auto& l : labels) l = int64_t(g.below(10));
    opt.zero_grad();
    Tensor loss = cross_entropy(model(x), tensor(labels, {16}));
    loss.backward();
    std::vector<Tensor> grads;
    for (const Tensor& p : params) grads.push_back(p.grad());
    out.grads = bits(grads);
    opt.step();
  }
  out.params = bits(params);
  return out;
}

}  // namespace

TEST_CASE("threads: two models trained at once match a sequential run bit for bit") {
  // Note: with the old shared stream and library scratchpads this hung inside
  // oneDNN (or gave different conv/matmul gradients).
  constexpr int kSteps = 3;
  for (int n : {get_num_threads(), 1}) {
    CAPTURE(n);
    ThreadCount count(n);
    const Trained ref0 = train(11, kSteps), ref1 = train(12, kSteps);
    REQUIRE(ref0.params != ref1.params);  // two different models
    Trained got[2];
    in_two_threads([&](int i) { got[i] = train(11 + uint64_t(i), kSteps); });
    CHECK(got[0].grads == ref0.grads);
    CHECK(got[0].params == ref0.params);
    CHECK(got[1].grads == ref1.grads);
    CHECK(got[1].params == ref1.params);
  }
}

TEST_CASE("threads: backward from two threads into one shared leaf loses no update") {
  Tensor x = tensor(std::vector<float>{1.f}, {1}, true);
  constexpr int kPerThread = 20000;
  in_two_threads([&](int) {
    for (int k = 0; k < kPerThread; ++k) (x * 2.f).sum().backward();  // each adds 2 to x.grad
  });
  CHECK(x.grad().to_vector<float>()[0] == 2.f * 2 * kPerThread);

  // A graph shared by both threads (kept with retain_graph): its nodes run in
  // two backward passes at once, each pass with its own dependency counts.
  x.set_grad({});
  const Tensor h = x * 3.f;
  in_two_threads([&](int) {
    for (int k = 0; k < 2000; ++k) (h * 2.f).sum().backward({}, /*retain_graph=*/true);  // each adds 6
  });
  CHECK(x.grad().to_vector<float>()[0] == 6.f * 2 * 2000);
}

TEST_CASE("threads: concurrent matmul and conv backward equal the single-threaded result") {
  Generator g(5);
  const Tensor a = randn({96, 128}, g), b = randn({128, 80}, g), gm = randn({96, 80}, g);
  const Tensor x = randn({8, 8, 16, 16}, g), w = randn({16, 8, 3, 3}, g), bias = randn({16}, g),
               gc = randn({8, 16, 16, 16}, g);
  // The gradients of Σ matmul(a, b)·gm and Σ conv2d(x, w, bias)·gc for leaves copied from the inputs.
  const auto grads = [&] {
    std::vector<Tensor> leaves;
    for (const Tensor* t : {&a, &b, &x, &w, &bias}) leaves.push_back(t->clone().requires_grad_());
    (matmul(leaves[0], leaves[1]) * gm).sum().backward();
    (conv2d(leaves[2], leaves[3], leaves[4], 1, 1) * gc).sum().backward();
    std::vector<Tensor> out;
    for (const Tensor& l : leaves) out.push_back(l.grad());
    return bits(out);
  };
  const std::vector<uint32_t> ref = grads();
  int mismatches[2] = {0, 0};
  in_two_threads([&](int i) {
    for (int k = 0; k < 10; ++k) mismatches[i] += grads() != ref;
  });
  CHECK(mismatches[0] == 0);
  CHECK(mismatches[1] == 0);
}

TEST_CASE("threads: set_num_threads applies to threads started later") {
  const int before = get_num_threads();
  for (int n : {1, before + 1}) {
    CAPTURE(n);
    ThreadCount count(n);
    int seen = 0;
    std::thread t([&] { seen = get_num_threads(); });
    t.join();
    CHECK(seen == n);
  }
  CHECK(get_num_threads() == before);
}

TEST_CASE("threads: the default generator hands each draw to exactly one thread") {
  const Generator::State saved = default_generator().state();
  constexpr int kDraws = 20000;
  manual_seed(3);
  std::vector<uint64_t> sequential(2 * kDraws);
  for (auto& v : sequential) v = default_generator().next_u64();
  manual_seed(3);
  std::vector<uint64_t> drawn[2];
  in_two_threads([&](int i) {
    for (int k = 0; k < kDraws; ++k) drawn[i].push_back(default_generator().next_u64());
  });
  std::vector<uint64_t> all = drawn[0];
  all.insert(all.end(), drawn[1].begin(), drawn[1].end());
  std::sort(all.begin(), all.end());
  std::sort(sequential.begin(), sequential.end());
  CHECK(all == sequential);
  default_generator().set_state(saved);
}

TEST_CASE("threads: a full sum gives the same bits with 1, 2, 3 or 4 threads") {
  // Large values that cancel exactly, shuffled among small ones: what survives of
  // the small ones depends on how the additions are grouped, so a grouping that
  // follows the thread count (or the order in which threads finish) shows up in
  // the bits.
  Generator g(9);
  const int64_t n = 300000;
  std::vector<float> v;
  for (int64_t i = 0; i < n / 4; ++i) v.push_back(1e12f * (0.5f + 0.5f * g.uniform()));
  for (int64_t i = 0; i < n / 4; ++i) v.push_back(-v[size_t(i)]);
  while (int64_t(v.size()) < n) v.push_back(g.uniform());
  for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[g.below(i + 1)]);
  const Tensor t = tensor(v, {n});
  std::vector<uint32_t> seen;
  for (int threads : {1, 2, 3, 4}) {
    ThreadCount count(threads);
    for (int k = 0; k < 3; ++k) seen.push_back(bits({t.sum()})[0]);
  }
  CHECK(std::count(seen.begin(), seen.end(), seen[0]) == int(seen.size()));
}
