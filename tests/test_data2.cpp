// The data pipeline: custom Datasets, DataLoaderOptions (drop_last, shuffle,
// workers), determinism across worker counts, worker shutdown and errors, and
// the transforms (Normalize, RandomCrop, RandomAffine, Compose).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <tape/data/dataloader.hpp>
#include <tape/data/dataset.hpp>
#include <tape/data/transforms.hpp>
#include <tape/tape.hpp>

#include "mnist.hpp"

using namespace tape;
using namespace tape::data;
using doctest::Contains;

namespace {

/// data [2, 3] filled with i, target [1] = i² (Float32): arbitrary example shapes.
struct Squares : Dataset {
  explicit Squares(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override { return {full({2, 3}, double(i)), full({1}, double(i * i))}; }

 private:
  int64_t n_;
};

/// Image i is [1, 6, 6] with pixels i + (r·6 + c)/100, label i % 10; `bad` throws.
struct Ramps : Dataset {
  explicit Ramps(int64_t n, int64_t bad = -1, int sleep_us = 0) : n_(n), bad_(bad), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (i == bad_) throw std::runtime_error("Ramps: sample " + std::to_string(i) + " is corrupt");
    Tensor x = Tensor::empty({1, 6, 6});
    for (int64_t k = 0; k < 36; ++k) x.data<float>()[k] = float(i) + float(k) / 100.f;
    return {x, tensor(std::vector<int64_t>{i % 10}, {})};
  }

 private:
  int64_t n_, bad_;
  int sleep_us_;
};

/// Every batch of one pass: x then y values, flattened, batch after batch.
std::vector<std::vector<float>> pass(DataLoader& loader) {
  std::vector<std::vector<float>> out;
  for (auto& b : loader) {
    out.push_back(b.x.to_vector<float>());
    out.push_back(b.y.to(Dtype::Float32).to_vector<float>());
  }
  return out;
}

std::vector<int64_t> batch_sizes(DataLoader& loader) {
  std::vector<int64_t> sizes;
  for (auto& b : loader) sizes.push_back(b.x.size(0));
  return sizes;
}

/// The sample indices of a pass over Squares (data[b, 0, 0] = i).
std::vector<int64_t> squares_order(DataLoader& loader) {
  std::vector<int64_t> order;
  for (auto& b : loader) {
    const auto x = b.x.to_vector<float>(), y = b.y.to_vector<float>();
    for (int64_t k = 0; k < b.x.size(0); ++k) {
      const auto i = int64_t(x[size_t(6 * k)]);
      CHECK(y[size_t(k)] == float(i * i));  // targets stay paired with their data
      order.push_back(i);
    }
  }
  return order;
}

Tensor iota_image(int64_t c, int64_t h, int64_t w) {  // pixel values 1, 2, 3, ...
  Tensor t = Tensor::empty({c, h, w});
  for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = float(k + 1);
  return t;
}

}  // namespace

TEST_CASE("data2: a custom Dataset through DataLoader — stacking, partial last batch, drop_last, shuffle") {
  auto ds = std::make_shared<Squares>(10);
  DataLoader plain(ds, {.batch_size = 4});
  CHECK(plain.num_batches() == 3);
  CHECK_FALSE(plain.shuffle());  // PyTorch's default
  auto it = plain.begin();
  CHECK(it->x.shape() == Shape{4, 2, 3});
  CHECK(it->y.shape() == Shape{4, 1});
  CHECK(it->x.to_vector<float>()[6 * 3 + 5] == 3.f);
  CHECK(batch_sizes(plain) == std::vector<int64_t>{4, 4, 2});  // the last partial batch is kept
  CHECK(squares_order(plain) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  DataLoader dropping(ds, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.num_batches() == 2);
  CHECK(batch_sizes(dropping) == std::vector<int64_t>{4, 4});
  DataLoader exact(Squares(8), {.batch_size = 4, .drop_last = true});  // by value; nothing to drop
  CHECK(batch_sizes(exact) == std::vector<int64_t>{4, 4});

  DataLoader shuffled(ds, {.batch_size = 3, .shuffle = true, .seed = 5});
  const auto e0 = squares_order(shuffled), e1 = squares_order(shuffled);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 10);  // every index once
  CHECK(e0.size() == 10);
  CHECK(e0 != e1);  // reshuffled each epoch
  CHECK(e0 == shuffled.permutation(0));
  CHECK(e0 != plain.permutation(0));
  CHECK(shuffled.dataset().size() == 10);

  // A TensorDataset by value through the options constructor: labels become [B].
  DataLoader tensors(TensorDataset{zeros({5, 1, 2, 2}), tensor(std::vector<int64_t>{0, 1, 2, 3, 4}, {5})},
                     {.batch_size = 2});
  auto b = *tensors.begin();
  CHECK(b.x.shape() == Shape{2, 1, 2, 2});
  CHECK(b.y.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  // get() of a TensorDataset: a view of row i and a 0-dim label.
  const TensorDataset mnistish{iota_image(3, 2, 2).reshape({3, 1, 2, 2}), tensor(std::vector<int64_t>{7, 8, 9}, {3})};
  const Example ex = mnistish.get(1);
  CHECK(ex.data.shape() == Shape{1, 2, 2});
  CHECK(ex.data.to_vector<float>() == std::vector<float>{5, 6, 7, 8});
  CHECK(ex.target.dim() == 0);
  CHECK(ex.target.item<int64_t>() == 8);
  CHECK_THROWS_WITH_AS(mnistish.get(3), Contains("TensorDataset::get: index 3 is outside [0, 3)"), Error);
}

TEST_CASE("data2: batches are bit-identical for num_workers 0, 1 and 3 with random transforms, and on resume") {
  const Transform augment = Compose{RandomCrop(6, 2), RandomAffine(20, {0.2, 0.2}), Normalize({0.5}, {0.25})};
  for (bool tensor_dataset : {false, true}) {
    CAPTURE(tensor_dataset);
    std::shared_ptr<const Dataset> ds = std::make_shared<Ramps>(23);
    if (tensor_dataset) {  // the same samples, held in memory
      TensorDataset t{Tensor::empty({23, 1, 6, 6}), Tensor::empty({23}, Dtype::Int64)};
      for (int64_t i = 0; i < 23; ++i) {
        const Example e = ds->get(i);
        std::copy_n(e.data.data<float>(), 36, t.images.data<float>() + 36 * i);
        t.labels.data<int64_t>()[i] = e.target.item<int64_t>();
      }
      ds = std::make_shared<TensorDataset>(t);
    }
    std::map<int, std::vector<std::vector<std::vector<float>>>> epochs;  // workers → passes
    for (int workers : {0, 1, 3}) {
      DataLoader loader(ds, {.batch_size = 4, .shuffle = true, .seed = 11, .num_workers = workers, .transform = augment});
      for (int e = 0; e < 3; ++e) epochs[workers].push_back(pass(loader));
    }
    CHECK(epochs[0] == epochs[1]);
    CHECK(epochs[0] == epochs[3]);
    CHECK(epochs[0][0].size() == 12);  // 6 batches (the last of 3), x and y each
    CHECK(epochs[0][0] != epochs[0][1]);

    // Resume at epoch 2 with another worker count.
    DataLoader resumed(ds, {.batch_size = 4, .shuffle = true, .seed = 11, .num_workers = 2, .transform = augment});
    resumed.set_epoch(2);
    CHECK(pass(resumed) == epochs[0][2]);

    // The transforms do something, and their randomness follows the epoch, not only the order.
    DataLoader raw(ds, {.batch_size = 4, .shuffle = true, .seed = 11});
    CHECK(pass(raw) != epochs[0][0]);
    DataLoader fixed_order(ds, {.batch_size = 23, .transform = augment});
    const auto f0 = pass(fixed_order), f1 = pass(fixed_order);
    CHECK(f0[1] == f1[1]);  // same labels in the same order
    CHECK(f0[0] != f1[0]);  // other augmentations
  }
}

TEST_CASE("data2: early break, a restarted epoch, a moved loader and destruction mid-epoch with workers") {
  auto ds = std::make_shared<Ramps>(40, -1, /*sleep_us=*/200);
  DataLoader reference(ds, {.batch_size = 3, .shuffle = true, .seed = 4});
  reference.set_epoch(1);
  const auto epoch1 = pass(reference);

  DataLoader loader(ds, {.batch_size = 3, .shuffle = true, .seed = 4, .num_workers = 3, .prefetch_factor = 1});
  int seen = 0;
  for (auto& b : loader) {
    CHECK(b.x.size(0) == 3);
    if (++seen == 2) break;  // the workers are still busy
  }
  CHECK(pass(loader) == epoch1);  // begin() joined the old pass and started epoch 1 cleanly

  { auto it = loader.begin(); ++it; }  // an iterator abandoned mid-epoch
  DataLoader moved = std::move(loader);
  CHECK(moved.num_batches() == 14);
  CHECK(batch_sizes(moved).size() == 14);
  {
    DataLoader doomed(ds, {.batch_size = 2, .num_workers = 2});
    auto it = doomed.begin();
    CHECK(it->x.size(0) == 2);
  }  // destroyed while the workers wait for room in the queue: joins, no deadlock, no leak
  {
    DataLoader never(ds, {.batch_size = 2, .num_workers = 2});  // never iterated: no threads
  }

  // Transforms run under NoGradGuard (grad mode is thread-local), in workers and in this thread.
  REQUIRE(grad_enabled());
  for (int workers : {0, 1}) {
    std::atomic<int> calls{0}, recording{0};
    DataLoader lambda(ds, {.batch_size = 5, .num_workers = workers, .transform = [&](const Tensor& x, Generator&) {
                             ++calls, recording += grad_enabled() ? 1 : 0;
                             return x * 2.0;
                           }});
    for (auto& b : lambda) CHECK_FALSE(b.x.requires_grad());
    CHECK(calls == 40);
    CHECK(recording == 0);
    CHECK(grad_enabled());
  }
}

TEST_CASE("data2: an exception from get() in a worker is rethrown in the consuming thread with its message") {
  for (int workers : {0, 2}) {
    CAPTURE(workers);
    DataLoader loader(std::make_shared<Ramps>(12, /*bad=*/7), {.batch_size = 2, .num_workers = workers});
    int before = 0;
    auto run = [&] {
      for (auto& b : loader) {
        (void)b;
        ++before;
      }
    };
    CHECK_THROWS_WITH_AS(run(), "Ramps: sample 7 is corrupt", std::runtime_error);
    CHECK(before == 3);  // batches 0..2 arrived in order first
    before = 0;
    CHECK_THROWS_WITH_AS(run(), "Ramps: sample 7 is corrupt", std::runtime_error);  // a new epoch still works
  }
  // A transform's tape::Error crosses the thread too.
  DataLoader bad(std::make_shared<Ramps>(4), {.batch_size = 2, .num_workers = 1, .transform = Normalize({0, 0}, {1, 1})});
  CHECK_THROWS_WITH_AS(pass(bad), Contains("Normalize: 2 mean/std values for an image of 1 channels, shape [1, 6, 6]"),
                       Error);
}

TEST_CASE("data2: Normalize by hand") {
  // [2, 1, 2]: channel 0 = (1, 2), channel 1 = (3, 4).
  const Tensor img = iota_image(2, 1, 2);
  const Normalize norm({0.5, 1.0}, {0.25, 2.0});
  CHECK(norm(img).to_vector<float>() == std::vector<float>{2.f, 6.f, 1.f, 1.5f});
  CHECK(norm(img).shape() == Shape{2, 1, 2});
  CHECK(img.to_vector<float>() == std::vector<float>{1, 2, 3, 4});  // the input is untouched
  Generator g(1);
  CHECK(Normalize({1.0}, {0.5})(img, g).to_vector<float>() == std::vector<float>{0.f, 2.f, 4.f, 6.f});  // broadcast
  const float m = 0.1307f, s = 0.3081f;  // MNIST's
  CHECK(Normalize({0.1307}, {0.3081})(full({1, 1, 1}, 1.0), g).item() == (1.f - m) / s);

  CHECK_THROWS_WITH_AS(Normalize({0.5, 0.5}, {1.0}), Contains("Normalize: mean and std need the same number"), Error);
  CHECK_THROWS_WITH_AS(Normalize({0.5}, {0.0}), Contains("Normalize: std must be finite and nonzero, got 0"), Error);
  CHECK_THROWS_WITH_AS(Normalize({0, 0, 0}, {1, 1, 1})(img),
                       Contains("Normalize: 3 mean/std values for an image of 2 channels, shape [2, 1, 2]"), Error);
  CHECK_THROWS_WITH_AS(norm(zeros({4, 4})), Contains("Normalize: expected a Float32 image [C, H, W], got shape [4, 4]"),
                       Error);
}

TEST_CASE("data2: RandomCrop with padding — bounded positions, content is a shifted window of the padded image") {
  const Tensor img = iota_image(2, 4, 5);  // two channels of 4x5
  const int64_t pad = 2;
  auto padded = [&](int64_t c, int64_t r, int64_t q) {  // the zero-padded image, by hand
    r -= pad, q -= pad;
    return r < 0 || r >= 4 || q < 0 || q >= 5 ? 0.f : float(c * 20 + r * 5 + q + 1);
  };
  const RandomCrop crop({3, 4}, pad);  // h 3, w 4 of a padded 8x9: top in [0, 5], left in [0, 5]
  auto window = [&](int64_t top, int64_t left) {
    std::vector<float> v;
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t q = 0; q < 4; ++q) v.push_back(padded(c, top + r, left + q));
    return v;
  };
  CHECK(crop.crop(img, 1, 3).to_vector<float>() == window(1, 3));
  CHECK(crop.crop(img, 0, 0).to_vector<float>() == window(0, 0));  // mostly padding

  std::set<std::pair<int64_t, int64_t>> hit;
  Generator g(3);
  for (int trial = 0; trial < 600; ++trial) {
    const Tensor out = crop(img, g);
    REQUIRE(out.shape() == Shape{2, 3, 4});
    const auto v = out.to_vector<float>();
    int matches = 0;
    for (int64_t top = 0; top <= 5; ++top)
      for (int64_t left = 0; left <= 5; ++left)
        if (v == window(top, left)) hit.insert({top, left}), ++matches;
    CHECK(matches >= 1);  // some in-bounds window
  }
  CHECK(hit.size() == 36);  // every position of the padded image is reachable

  const RandomCrop square(4);  // no padding: 4x4 windows of the 4x5 image
  const Tensor s = square(img, g);
  CHECK(s.shape() == Shape{2, 4, 4});
  const float first = s.to_vector<float>()[0];
  CHECK((first == 1.f || first == 2.f));
  CHECK_THROWS_WITH_AS(RandomCrop(7, 1)(img, g),
                       Contains("RandomCrop: crop 7x7 is larger than the padded image 6x7 (shape [2, 4, 5], padding 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(RandomCrop(0), Contains("RandomCrop: size must be positive, got 0x0"), Error);
}

TEST_CASE("data2: RandomAffine — identity at 0, a 90° rotation and a translation by hand") {
  Tensor img = Tensor::empty({3, 7, 9});
  Generator src(8);
  src.fill_uniform(img.data<float>(), img.numel());
  Generator g(2);
  CHECK(RandomAffine(0)(img, g).to_vector<float>() == img.to_vector<float>());
  CHECK(RandomAffine(0, {0, 0})(img, g).to_vector<float>() == img.to_vector<float>());

  // 90° (clockwise, as torchvision's F.affine) about the centre of a 3x3 image.
  const Tensor sq = iota_image(1, 3, 3);  // 1 2 3 / 4 5 6 / 7 8 9
  CHECK(RandomAffine::apply(sq, 90, 0, 0).to_vector<float>() == std::vector<float>{7, 4, 1, 8, 5, 2, 9, 6, 3});
  CHECK(RandomAffine::apply(sq, -90, 0, 0).to_vector<float>() == std::vector<float>{3, 6, 9, 2, 5, 8, 1, 4, 7});
  // A shift by (dx, dy) = (1, -1) moves content right and up, zero-filling the rest.
  CHECK(RandomAffine::apply(sq, 0, 1, -1).to_vector<float>() == std::vector<float>{0, 4, 5, 0, 7, 8, 0, 0, 0});
  // On a 4x4 image (even size: the centre falls between pixels) 90° is a permutation.
  const Tensor four = iota_image(1, 4, 4);
  auto r = RandomAffine::apply(four, 90, 0, 0).to_vector<float>();
  std::vector<float> want;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j) want.push_back(float((3 - j) * 4 + i + 1));  // out[i][j] = in[3-j][i]
  CHECK(r == want);

  // Against torchvision's sampling (tests/reference/transforms_reference.py, PyTorch 1.13) on a 5x6 image.
  const Tensor r56 = iota_image(1, 5, 6);
  auto ints = [](const Tensor& t) {
    std::vector<int> v;
    for (float f : t.to_vector<float>()) v.push_back(int(f));
    return v;
  };
  CHECK(ints(RandomAffine::apply(r56, 30, 1, -2)) ==
        std::vector<int>{0, 19, 20, 15, 16, 11, 0, 26, 27, 22, 22, 17, 0, 0, 27, 28, 23, 24, 0, 0, 0, 0, 29, 30, 0, 0, 0, 0, 0, 0});
  CHECK(ints(RandomAffine::apply(r56, -17.5, 0, 1)) ==
        std::vector<int>{0, 0, 0, 0, 6, 0, 0, 3, 4, 5, 12, 12, 1, 8, 9, 10, 11, 18, 7, 14, 15, 16, 17, 24, 13, 20, 21, 22, 23, 30});
  CHECK(ints(RandomAffine::apply(r56, 45, 2, 0)) ==
        std::vector<int>{0, 0, 0, 13, 8, 2, 0, 0, 19, 14, 14, 9, 0, 25, 26, 20, 15, 16, 0, 0, 26, 27, 22, 17, 0, 0, 0, 28, 29, 23});

  // Random draws stay within the ranges: translate only → a whole-pixel shift of at most 0.2·9 → 2 columns.
  const RandomAffine shift(0, {0.2, 0.0});
  std::set<int64_t> shifts;
  for (int trial = 0; trial < 200; ++trial) {
    const auto v = shift(sq.reshape({1, 1, 9}), g).to_vector<float>();  // a 1x9 row 1..9
    int64_t dx = 99;
    for (int64_t d = -2; d <= 2; ++d) {
      bool same = true;
      for (int64_t j = 0; j < 9; ++j) same = same && v[size_t(j)] == (j - d >= 0 && j - d < 9 ? float(j - d + 1) : 0.f);
      if (same) dx = d;
    }
    CHECK(dx != 99);
    shifts.insert(dx);
  }
  CHECK(shifts == std::set<int64_t>{-2, -1, 0, 1, 2});
  CHECK_THROWS_WITH_AS(RandomAffine(-1), Contains("RandomAffine: degrees must be >= 0, got -1"), Error);
  CHECK_THROWS_WITH_AS(RandomAffine(5, {1.5, 0}), Contains("RandomAffine: translate fractions must be in [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(RandomAffine(5)(zeros({4}), g), Contains("RandomAffine: expected an image [C, H, W], got shape [4]"),
                       Error);
}

TEST_CASE("data2: Batch.data and .target are .x and .y, also in copies") {
  DataLoader loader(std::make_shared<Squares>(5), {.batch_size = 2});
  for (auto& b : loader) {
    CHECK(b.data.impl() == b.x.impl());
    CHECK(b.target.impl() == b.y.impl());
  }
  Batch a(full({2}, 1.0), full({2}, 2.0));
  Batch copy = a;
  CHECK(&copy.data == &copy.x);  // the copy's references bind to its own members
  CHECK(copy.data.impl() == a.x.impl());
  Batch assigned;
  assigned = copy;
  CHECK(&assigned.target == &assigned.y);
  CHECK(assigned.target.to_vector<float>() == std::vector<float>{2.f, 2.f});
  assigned.data = full({1}, 5.0);  // writing through the alias replaces x
  CHECK(assigned.x.item<float>() == 5.f);
  auto& [x, y] = a;
  CHECK(&x == &a.x);
  CHECK(&y == &a.y);
}

TEST_CASE("data2: errors are one-line messages naming DataLoader and the problem") {
  auto ds = std::make_shared<Squares>(5);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.batch_size = 0}), "DataLoader: batch_size must be positive, got 0", Error);
  CHECK_THROWS_WITH_AS(DataLoader(std::make_shared<Squares>(0), {.batch_size = 2}),
                       "DataLoader: the dataset is empty (0 samples); nothing to iterate over", Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.batch_size = 8, .drop_last = true}),
                       "DataLoader: drop_last with batch_size 8 > 5 samples leaves no batch", Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.batch_size = 2, .num_workers = -1}), "DataLoader: num_workers must be >= 0, got -1",
                       Error);
  CHECK_THROWS_WITH_AS(DataLoader(std::shared_ptr<Dataset>(), {}), "DataLoader: the dataset is null", Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.num_workers = 1, .prefetch_factor = 0}),
                       "DataLoader: prefetch_factor must be >= 1, got 0", Error);

  struct Ragged : Dataset {  // sample 3 is one element longer
    int64_t size() const override { return 6; }
    Example get(int64_t i) const override { return {zeros({i == 3 ? 3 : 2}), zeros({})}; }
  };
  for (int workers : {0, 2}) {
    DataLoader ragged(Ragged{}, {.batch_size = 4, .num_workers = workers});
    CHECK_THROWS_WITH_AS(pass(ragged),
                         "DataLoader: example 3 has data [3] Float32 but example 0 has [2] Float32; examples of a batch must agree",
                         Error);
  }
  DataLoader ok(ds, {.batch_size = 2});
  CHECK_THROWS_WITH_AS(ok.batch(0), "DataLoader::batch: no epoch has begun (call begin())", Error);
}

// Throughput of one MNIST epoch, batch 128, RandomAffine(10, (0.1, 0.1)) + Normalize, with a
// consumer that does nothing (docs/data.md quotes it). Skipped by default; run with
//   tape_tests_data2 -tc="*throughput*" --no-skip
TEST_CASE("data2: MNIST epoch throughput with augmentation" * doctest::skip(true)) {
  REQUIRE(tape_test::mnist_available());
  const TensorDataset train = load_mnist(tape_test::mnist_dir(), "train");
  const Transform augment = Compose{RandomAffine(10, {0.1, 0.1}), Normalize({0.1307}, {0.3081})};
  for (int workers : {0, 1, 2}) {
    DataLoader loader(train, {.batch_size = 128, .shuffle = true, .num_workers = workers, .transform = augment});
    for (int rep = 0; rep < 2; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();  // CPU time of all threads
      int64_t n = 0;
      for (auto& b : loader) n += b.x.size(0);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
      std::printf("num_workers %d: %lld samples in %.3f s = %.0f samples/s, %.2f us CPU per sample\n", workers,
                  (long long)n, s, double(n) / s, 1e6 * cpu / double(n));
      CHECK(n == 60000);
    }
  }
  DataLoader plain(train, {.batch_size = 128, .shuffle = true});
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : plain) (void)b;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("no transform (fast path): %.0f samples/s\n", 60000.0 / s);
}
