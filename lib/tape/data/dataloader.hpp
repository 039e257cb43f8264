#pragma once
/// \file DataLoader: shuffled minibatches over a Dataset, reproducible per (seed, epoch).
#include <cstdint>
#include <vector>

#include "tape/data/dataset.hpp"

namespace tape::data {

/// One minibatch: inputs `x` [B, ...] and targets `y` [B] (fresh contiguous tensors).
struct Batch {
  Tensor x;
  Tensor y;
};

/// Iterates a dataset in minibatches; the last partial batch is kept.
///
///   for (auto& b : loader) { ... b.x ... b.y ... }
///
// Note: each begin() starts a new epoch. Epoch e's order is a pure function of
// (seed, e) — a Generator seeded from both, then Fisher–Yates — so set_epoch(e)
// on a resumed run reproduces the exact batches of an uninterrupted one, and no
// RNG state besides the epoch counter needs to be checkpointed. The order is
// stored in the loader, so only one pass may be in flight at a time.
class DataLoader {
 public:
  /// Throws on an empty dataset: a loop over no batches would report NaN losses.
  DataLoader(Dataset ds, int64_t batch_size, bool shuffle = true, uint64_t seed = 0);

  class Iterator {
   public:
    using difference_type = std::ptrdiff_t;
    using value_type = Batch;
    Iterator(const DataLoader* loader, int64_t index);
    Batch& operator*() { return batch_; }
    Batch* operator->() { return &batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return index_ == o.index_; }
    bool operator!=(const Iterator& o) const { return index_ != o.index_; }

   private:
    const DataLoader* loader_;
    int64_t index_;
    Batch batch_;
  };

  /// Starts the next epoch (reshuffling when enabled) and returns its first batch.
  Iterator begin();
  Iterator end() const;

  /// Batch `i` of the current epoch's order (0 <= i < num_batches()).
  Batch batch(int64_t i) const;
  /// Sample order of epoch `e` (identity when shuffle is off).
  std::vector<int64_t> permutation(int64_t e) const;

  int64_t epoch() const { return epoch_; }          ///< epochs begun so far
  void set_epoch(int64_t e);                        ///< the next begin() runs epoch e
  int64_t num_batches() const;
  int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  uint64_t seed() const { return seed_; }
  const Dataset& dataset() const { return ds_; }

 private:
  Dataset ds_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;  // sample order of the epoch in progress
};

}  // namespace tape::data
