#pragma once
/// \file Dataset interface (size + get), the in-memory TensorDataset, and the MNIST IDX reader.
#include <cstdint>
#include <string>

#include "tape/core/tensor.hpp"

namespace tape::data {

/// One sample: an input (`data`, e.g. an image [C, H, W]) and its `target`
/// (e.g. a 0-dim Int64 class label), like a PyTorch dataset item.
struct Example {
  Tensor data;
  Tensor target;
};

/// A dataset a DataLoader can draw from: subclass it and implement size() and get().
///
///   struct Squares : data::Dataset {
///     int64_t size() const override { return 100; }
///     data::Example get(int64_t i) const override {
///       return {full({1}, float(i)), full({1}, float(i * i))};
///     }
///   };
///
/// Examples of one dataset must agree in shape and dtype (the loader stacks
/// them into [B, ...]). get() must be safe to call from several threads at once
/// (DataLoader workers do): read-only access to members is.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples.
  virtual int64_t size() const = 0;
  /// Sample `i`, 0 <= i < size().
  virtual Example get(int64_t i) const = 0;

 protected:
  Dataset() = default;
  Dataset(const Dataset&) = default;
  Dataset& operator=(const Dataset&) = default;
};

/// A supervised dataset held in memory: `images` [N, ...] Float32, `labels` [N] Int64.
/// Copies share the tensors. get(i) returns views (images[i], 0-dim labels[i]).
class TensorDataset : public Dataset {
 public:
  Tensor images;
  Tensor labels;

  TensorDataset() = default;
  TensorDataset(Tensor images, Tensor labels);

  /// Number of samples N (0 for an empty dataset).
  int64_t size() const override;
  Example get(int64_t i) const override;
  /// Samples [begin, end) as views sharing this dataset's storage.
  TensorDataset subset(int64_t begin, int64_t end) const;
};

/// Reads an IDX3 image file (magic 0x803) → Float32 [N, 1, rows, cols] scaled to [0, 1].
Tensor load_idx_images(const std::string& path);
/// Reads an IDX1 label file (magic 0x801) → Int64 [N].
Tensor load_idx_labels(const std::string& path);

/// MNIST from `dir` (the four original IDX files); `split` is "train" or "test".
/// Every problem with the files (missing, truncated, wrong magic, count mismatch,
/// label > 9) throws a tape::Error naming the file.
TensorDataset load_mnist(const std::string& dir, const std::string& split);

}  // namespace tape::data
