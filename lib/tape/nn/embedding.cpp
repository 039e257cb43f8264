#include "tape/nn/embedding.hpp"

#include "tape/core/grad_mode.hpp"
#include "tape/nn/init.hpp"
#include "tape/ops/ops.hpp"
#include "tape/ops/rnn.hpp"

namespace tape::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim)
    : Embedding(EmbeddingOptions(num_embeddings, embedding_dim)) {}

Embedding::Embedding(const EmbeddingOptions& o) : options(o) {
  const int64_t num = o.num_embeddings();
  TAPE_CHECK(num > 0 && o.embedding_dim() > 0, "Embedding: num_embeddings and embedding_dim must be > 0, got ", num,
             " and ", o.embedding_dim());
  if (o.padding_idx()) {
    const int64_t p = *o.padding_idx();
    TAPE_CHECK(p >= -num && p < num, "Embedding: padding_idx must be within [", -num, ", ", num, "), got ", p);
    options.padding_idx(p < 0 ? p + num : p);
  }
  weight = register_parameter("weight", Tensor::empty({num, o.embedding_dim()}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight, 0.0, 1.0);
  if (options.padding_idx()) {
    NoGradGuard no_grad;
    weight.select(0, *options.padding_idx()).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  return embedding(weight, indices, options.padding_idx().value_or(-1));
}

std::string Embedding::extra_repr() const {
  std::string s = str_cat(options.num_embeddings(), ", ", options.embedding_dim());
  if (options.padding_idx()) s += str_cat(", padding_idx=", *options.padding_idx());
  return s;
}

}  // namespace tape::nn
