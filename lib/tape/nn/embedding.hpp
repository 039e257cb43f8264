#pragma once
/// \file nn::Embedding: a lookup table of learned vectors (torch.nn.Embedding).
#include <cstdint>
#include <optional>
#include <string>

#include "tape/nn/module.hpp"
#include "tape/nn/options.hpp"

namespace tape::nn {

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  TAPE_ARG(int64_t, num_embeddings);
  TAPE_ARG(int64_t, embedding_dim);
  /// The row that gets no gradient (and starts at zero); negative counts from the end.
  TAPE_ARG(std::optional<int64_t>, padding_idx) = std::nullopt;
};

/// y[..., :] = weight[indices[...], :] for Int64 indices of any shape → [..., embedding_dim].
/// weight [num_embeddings, embedding_dim] ~ N(0, 1) as in PyTorch, the padding_idx row zeroed.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  explicit Embedding(const EmbeddingOptions& options);
  /// indices: an Int64 tensor of any shape.
  Tensor forward(const Tensor& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;  ///< "10, 3, padding_idx=0"
  /// Re-draws the weight from N(0, 1) and zeros the padding row.
  void reset_parameters();

  EmbeddingOptions options;  ///< padding_idx() is resolved (never negative)
  Tensor weight;             ///< [num_embeddings, embedding_dim]
};

}  // namespace tape::nn
