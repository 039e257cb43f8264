#include "tape/data/dataloader.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace tape::data {

namespace {

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Rows `idx[0..n)` of contiguous `src` (dim 0) gathered into a new tensor.
Tensor gather_rows(const Tensor& src, const int64_t* idx, int64_t n) {
  Shape shape = src.shape();
  shape[0] = n;
  Tensor out = Tensor::empty(shape, src.dtype());
  const size_t row_bytes = size_t(src.numel() / std::max<int64_t>(src.size(0), 1)) * dtype_size(src.dtype());
  const auto* from = static_cast<const char*>(src.impl()->storage->data()) +
                     src.impl()->offset * int64_t(dtype_size(src.dtype()));
  auto* to = static_cast<char*>(out.impl()->storage->data()) + out.impl()->offset * int64_t(dtype_size(out.dtype()));
  // A batch of MNIST images is ~3 MB of scattered rows: worth both cores.
  if (size_t(n) * row_bytes < (size_t(1) << 20)) {
    for (int64_t i = 0; i < n; ++i) std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes, row_bytes);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

DataLoader::DataLoader(Dataset ds, int64_t batch_size, bool shuffle, uint64_t seed)
    : ds_(std::move(ds)), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
  TAPE_CHECK(batch_size > 0, "DataLoader: batch_size must be positive, got ", batch_size);
  TAPE_CHECK(ds_.images.defined() && ds_.labels.defined(), "DataLoader: the dataset has no images or labels");
  TAPE_CHECK(ds_.images.dim() >= 1 && ds_.labels.dim() >= 1 && ds_.images.size(0) == ds_.labels.size(0),
             "DataLoader: images ", ds_.images.shape(), " and labels ", ds_.labels.shape(),
             " disagree on the number of samples");
  TAPE_CHECK(ds_.size() > 0, "DataLoader: the dataset is empty (0 samples); nothing to iterate over");
  ds_.images = ds_.images.contiguous();
  ds_.labels = ds_.labels.contiguous();
}

std::vector<int64_t> DataLoader::permutation(int64_t e) const {
  std::vector<int64_t> order(size_t(ds_.size()));
  std::iota(order.begin(), order.end(), int64_t(0));
  if (!shuffle_) return order;
  Generator g(seed_ ^ mix64(uint64_t(e) + 0x9e3779b97f4a7c15ull));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
  return order;
}

DataLoader::Iterator DataLoader::begin() {
  order_ = permutation(epoch_++);
  return Iterator(this, 0);
}

DataLoader::Iterator DataLoader::end() const { return Iterator(this, num_batches()); }

void DataLoader::set_epoch(int64_t e) {
  TAPE_CHECK(e >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", e);
  epoch_ = e;
}

int64_t DataLoader::num_batches() const { return (ds_.size() + batch_size_ - 1) / batch_size_; }

Batch DataLoader::batch(int64_t i) const {
  TAPE_CHECK(0 <= i && i < num_batches(), "DataLoader::batch: index ", i, " is outside [0, ",
             num_batches(), ")");
  TAPE_CHECK(int64_t(order_.size()) == ds_.size(), "DataLoader::batch: no epoch has begun (call begin())");
  const int64_t start = i * batch_size_, n = std::min(batch_size_, ds_.size() - start);
  return {gather_rows(ds_.images, order_.data() + start, n), gather_rows(ds_.labels, order_.data() + start, n)};
}

DataLoader::Iterator::Iterator(const DataLoader* loader, int64_t index) : loader_(loader), index_(index) {
  if (index_ < loader_->num_batches()) batch_ = loader_->batch(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (++index_ < loader_->num_batches()) batch_ = loader_->batch(index_);
  else batch_ = Batch{};
  return *this;
}

}  // namespace tape::data
