#pragma once
/// \file DataLoader: minibatches over a Dataset, per-sample transforms, prefetch
/// worker threads; reproducible per (seed, epoch) whatever the worker count.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

#include "tape/data/dataset.hpp"
#include "tape/data/transforms.hpp"

namespace tape::data {

/// One minibatch: inputs `x` [B, ...] and targets `y` [B, ...] (fresh contiguous
/// tensors), also reachable as `data` and `target` (the same tensors, LibTorch's
/// names): `b.data` is `b.x`. `auto& [x, y] = b` binds x and y.
struct Batch {
  Tensor x;
  Tensor y;
  Tensor& data = x;
  Tensor& target = y;

  Batch() = default;
  Batch(Tensor x_, Tensor y_) : x(std::move(x_)), y(std::move(y_)) {}
  // data/target always refer to this batch's own x/y: copies copy the tensors only.
  Batch(const Batch& o) : x(o.x), y(o.y) {}
  Batch(Batch&& o) noexcept : x(std::move(o.x)), y(std::move(o.y)) {}
  Batch& operator=(const Batch& o) { x = o.x, y = o.y; return *this; }
  Batch& operator=(Batch&& o) noexcept { x = std::move(o.x), y = std::move(o.y); return *this; }

  template <size_t I> Tensor& get() & { return I == 0 ? x : y; }
  template <size_t I> const Tensor& get() const& { return I == 0 ? x : y; }
  template <size_t I> Tensor get() && { return std::move(I == 0 ? x : y); }
};

/// DataLoader options (aggregate, LibTorch/PyTorch names and defaults):
///   DataLoader(ds, {.batch_size = 128, .shuffle = true, .seed = 1, .num_workers = 2})
struct DataLoaderOptions {
  int64_t batch_size = 1;   ///< samples per batch (PyTorch's default)
  bool shuffle = false;     ///< reshuffle every epoch (PyTorch's default: off)
  uint64_t seed = 0;        ///< epoch order and transform randomness derive from it
  bool drop_last = false;   ///< drop the last batch when it is smaller than batch_size
  int num_workers = 0;      ///< threads preparing batches ahead; 0: in the calling thread
  Transform transform = {};  ///< applied to each example's data (in the workers)
  int prefetch_factor = 2;  ///< batches queued ahead per worker (num_workers > 0)
  /// Data-parallel sharding (PyTorch's DistributedSampler): with world_size N > 1
  /// this loader yields only rank `rank`'s share of each epoch's order — every
  /// N-th sample, starting at `rank`, of the order padded to a multiple of N by
  /// repeating its first samples — so the N ranks see disjoint shards of equal size.
  int rank = 0;
  int world_size = 1;
};

/// Iterates a dataset in minibatches.
///
///   for (auto& b : loader) { ... b.x ... b.y ... }
///
// Note: each begin() starts a new epoch. Epoch e's order is a pure function of
// (seed, e) — a Generator seeded from both, then Fisher–Yates — and the
// transform of sample i in epoch e draws from a Generator seeded from (seed, e,
// i). So batches are bit-identical for any num_workers, and set_epoch(e) on a
// resumed run reproduces the exact batches of an uninterrupted one: no RNG state
// besides the epoch counter needs to be checkpointed. Sharded over N ranks with
// batch_size B, step s of rank r takes samples s·B·N + r + N·j (j < B) of the
// padded order: the N ranks' batches of one step are together the batch s of an
// unsharded loader with batch size B·N and the same seed (docs/distributed.md). Only one pass may be in
// flight at a time: begin() cancels the previous one (its workers are joined).
class DataLoader {
 public:
  /// Any dataset, shared (the loader keeps it alive; workers call get() concurrently).
  DataLoader(std::shared_ptr<const Dataset> ds, DataLoaderOptions options);
  /// A dataset by value: DataLoader(load_mnist(dir, "train"), {.batch_size = 64}).
  template <class D>
    requires std::derived_from<std::remove_cvref_t<D>, Dataset>
  DataLoader(D&& ds, DataLoaderOptions options)
      : DataLoader(std::make_shared<const std::remove_cvref_t<D>>(std::forward<D>(ds)), std::move(options)) {}
  /// The first-wave spelling: shuffles by default.
  DataLoader(TensorDataset ds, int64_t batch_size, bool shuffle = true, uint64_t seed = 0);
  ~DataLoader();
  DataLoader(DataLoader&&) noexcept;
  DataLoader& operator=(DataLoader&&) noexcept;

  class Iterator {
   public:
    using difference_type = std::ptrdiff_t;
    using value_type = Batch;
    Iterator(DataLoader* loader, int64_t index);
    Batch& operator*() { return batch_; }
    Batch* operator->() { return &batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return index_ == o.index_; }
    bool operator!=(const Iterator& o) const { return index_ != o.index_; }

   private:
    DataLoader* loader_;
    int64_t index_;
    Batch batch_;
  };

  /// Starts the next epoch (reshuffling when enabled; workers start) and returns its first batch.
  Iterator begin();
  Iterator end();

  /// Batch `i` of the current epoch's order (0 <= i < num_batches()), built in this thread.
  Batch batch(int64_t i) const;
  /// Sample order of epoch `e` over the whole dataset (identity when shuffle is
  /// off); the same on every rank.
  std::vector<int64_t> permutation(int64_t e) const;
  /// The samples this loader yields in epoch `e`, in order: permutation(e), or
  /// with world_size > 1 this rank's shard of it (options() rank/world_size).
  std::vector<int64_t> indices(int64_t e) const;
  /// Samples per epoch on this rank (the dataset's size unless sharded).
  int64_t num_samples() const;

  int64_t epoch() const { return epoch_; }          ///< epochs begun so far
  void set_epoch(int64_t e);                        ///< the next begin() runs epoch e
  int64_t num_batches() const;
  int64_t batch_size() const;
  bool shuffle() const;
  uint64_t seed() const;
  const DataLoaderOptions& options() const;
  const Dataset& dataset() const;

 private:
  struct Source;      // the dataset and options, shared with the workers
  class Prefetcher;   // the worker threads of one epoch
  Batch next(int64_t i);  // batch i of the epoch in progress (from the workers when any)

  std::shared_ptr<const Source> src_;
  int64_t epoch_ = 0;
  int64_t current_epoch_ = -1;                          // the epoch order_ belongs to
  std::shared_ptr<const std::vector<int64_t>> order_;  // sample order of the epoch in progress
  std::unique_ptr<Prefetcher> prefetcher_;
};

}  // namespace tape::data

template <>
struct std::tuple_size<tape::data::Batch> : std::integral_constant<size_t, 2> {};
template <size_t I>
struct std::tuple_element<I, tape::data::Batch> {
  using type = tape::Tensor;
};
