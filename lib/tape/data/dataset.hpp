#pragma once
/// \file Dataset (images + labels) and the MNIST IDX reader.
#include <cstdint>
#include <string>

#include "tape/core/tensor.hpp"

namespace tape::data {

/// A supervised dataset held in memory: `images` [N, ...] Float32, `labels` [N] Int64.
struct Dataset {
  Tensor images;
  Tensor labels;

  /// Number of samples N (0 for an empty dataset).
  int64_t size() const;
  /// Samples [begin, end) as views sharing this dataset's storage.
  Dataset subset(int64_t begin, int64_t end) const;
};

/// Reads an IDX3 image file (magic 0x803) → Float32 [N, 1, rows, cols] scaled to [0, 1].
Tensor load_idx_images(const std::string& path);
/// Reads an IDX1 label file (magic 0x801) → Int64 [N].
Tensor load_idx_labels(const std::string& path);

/// MNIST from `dir` (the four original IDX files); `split` is "train" or "test".
/// Every problem with the files (missing, truncated, wrong magic, count mismatch,
/// label > 9) throws a tape::Error naming the file.
Dataset load_mnist(const std::string& dir, const std::string& split);

}  // namespace tape::data
