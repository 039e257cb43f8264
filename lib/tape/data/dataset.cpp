#include "tape/data/dataset.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "tape/io/file.hpp"

namespace tape::data {

namespace {

/// A row-range view of `t` (dim 0), sharing storage.
Tensor rows_view(const Tensor& t, int64_t begin, int64_t end) {
  Tensor c = t.contiguous();
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = c.impl()->storage;
  impl->shape = c.shape();
  impl->shape[0] = end - begin;
  impl->strides = contiguous_strides(impl->shape);
  impl->offset = c.impl()->offset + begin * c.strides()[0];
  impl->dtype = c.dtype();
  return Tensor(std::move(impl));
}

/// Row `i` of `t` (dim 0) as a view without that dim: [N, ...] → [...] (any strides).
Tensor row_view(const Tensor& t, int64_t i) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->shape.assign(t.shape().begin() + 1, t.shape().end());
  impl->strides.assign(t.strides().begin() + 1, t.strides().end());
  impl->offset = t.impl()->offset + i * t.strides()[0];
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

/// The whole file as bytes: a regular file (a directory, FIFO or device is a
/// one-line error, and a FIFO is never opened for a blocking read).
std::string read_file(const char* fn, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const fs::path dir = fs::path(path).parent_path();
    const bool no_dir = !dir.empty() && !fs::is_directory(dir, ec);
    throw Error(str_cat(fn, ": ", path, " does not exist", no_dir ? str_cat(" (nor does the directory ", dir.string(), ")") : "",
                    "; run tools/fetch_mnist.sh to download MNIST"));
  }
  return read_regular_file(path, str_cat(fn, ": cannot read ", path), std::numeric_limits<uint64_t>::max());
}

const uint8_t* bytes_of(const std::string& b) { return reinterpret_cast<const uint8_t*>(b.data()); }

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

/// Checks the magic number and header size of an IDX file; returns its dimensions.
std::vector<uint64_t> idx_header(const char* fn, const std::string& b, const std::string& path,
                                 uint32_t magic, const char* kind) {
  const size_t ndims = magic & 0xff;
  const size_t header = 4 + 4 * ndims;
  TAPE_CHECK(b.size() >= 4, fn, ": ", path, " is truncated: ", b.size(),
             " bytes, too short for an IDX header");
  TAPE_CHECK(be32(bytes_of(b)) == magic, fn, ": ", path, " has magic number ", hex(be32(bytes_of(b))),
             ", expected ", hex(magic), " (IDX ", kind, " file)");
  TAPE_CHECK(b.size() >= header, fn, ": ", path, " is truncated: ", b.size(),
             " bytes, shorter than its ", header, "-byte IDX header");
  std::vector<uint64_t> dims(ndims);
  for (size_t i = 0; i < ndims; ++i) dims[i] = be32(bytes_of(b) + 4 + 4 * i);
  return dims;
}

Tensor read_images(const char* fn, const std::string& path) {
  const auto b = read_file(fn, path);
  const auto d = idx_header(fn, b, path, 0x803, "images");
  const uint64_t n = d[0], rows = d[1], cols = d[2];
  uint64_t want = 0;  // header + pixels; a corrupt header must not overflow this
  // the tensor's numel and strides (partial products of [n, 1, rows, cols]) must fit an int64,
  // also when a size is 0 and the file is short
  const uint64_t max = uint64_t(std::numeric_limits<int64_t>::max());
  const bool fits = rows * cols <= max && n * rows <= max &&
                    !__builtin_mul_overflow(n, rows * cols, &want) && want <= UINT64_MAX - 16;
  want += 16;
  TAPE_CHECK(fits, fn, ": ", path, " has a corrupt header: ", n, " images of ", rows, "x", cols);
  TAPE_CHECK(b.size() >= want, fn, ": ", path, " is truncated: header says ", n, " images of ",
             rows, "x", cols, " (", want, " bytes) but the file has ", b.size(), " bytes");
  TAPE_CHECK(b.size() == want, fn, ": ", path, " has ", b.size() - want,
             " trailing bytes after ", n, " images of ", rows, "x", cols, " (", want, " bytes)");
  Tensor t = Tensor::empty({int64_t(n), 1, int64_t(rows), int64_t(cols)});
  float* out = t.data<float>();
  float scale[256];
  for (int v = 0; v < 256; ++v) scale[v] = float(v) / 255.f;
  const uint8_t* px = bytes_of(b) + 16;
  for (uint64_t i = 0; i < n * rows * cols; ++i) out[i] = scale[px[i]];
  return t;
}

Tensor read_labels(const char* fn, const std::string& path) {
  const auto b = read_file(fn, path);
  const uint64_t n = idx_header(fn, b, path, 0x801, "labels")[0];
  TAPE_CHECK(b.size() >= 8 + n, fn, ": ", path, " is truncated: header says ", n,
             " labels (", 8 + n, " bytes) but the file has ", b.size(), " bytes");
  TAPE_CHECK(b.size() == 8 + n, fn, ": ", path, " has ", b.size() - 8 - n,
             " trailing bytes after ", n, " labels (", 8 + n, " bytes)");
  Tensor t = Tensor::empty({int64_t(n)}, Dtype::Int64);
  int64_t* out = t.data<int64_t>();
  const uint8_t* y = bytes_of(b) + 8;
  for (uint64_t i = 0; i < n; ++i) out[i] = y[i];
  return t;
}

}  // namespace

TensorDataset::TensorDataset(Tensor images_, Tensor labels_) : images(std::move(images_)), labels(std::move(labels_)) {}

int64_t TensorDataset::size() const { return images.defined() ? images.size(0) : 0; }

Example TensorDataset::get(int64_t i) const {
  TAPE_CHECK(0 <= i && i < size(), "TensorDataset::get: index ", i, " is outside [0, ", size(), ")");
  TAPE_CHECK(labels.defined() && labels.dim() >= 1 && labels.size(0) == size(), "TensorDataset::get: images ",
             images.shape(), " and labels ", labels.defined() ? labels.shape() : Shape{}, " disagree on the number of samples");
  return {row_view(images, i), row_view(labels, i)};
}

TensorDataset TensorDataset::subset(int64_t begin, int64_t end) const {
  TAPE_CHECK(0 <= begin && begin <= end && end <= size(), "TensorDataset::subset: range [", begin, ", ",
             end, ") is outside the dataset of ", size(), " samples");
  return {rows_view(images, begin, end), rows_view(labels, begin, end)};
}

Tensor load_idx_images(const std::string& path) { return read_images("load_idx_images", path); }

Tensor load_idx_labels(const std::string& path) { return read_labels("load_idx_labels", path); }

TensorDataset load_mnist(const std::string& dir, const std::string& split) {
  const char* fn = "load_mnist";
  TAPE_CHECK(split == "train" || split == "test", fn, ": unknown split '", split,
             "' (expected \"train\" or \"test\")");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = (std::filesystem::path(dir) / (prefix + "-images-idx3-ubyte")).string();
  const std::string labels_path = (std::filesystem::path(dir) / (prefix + "-labels-idx1-ubyte")).string();
  TensorDataset ds{read_images(fn, images_path), read_labels(fn, labels_path)};
  TAPE_CHECK(ds.images.size(0) > 0, fn, ": ", images_path, " holds 0 images; a dataset needs at least one");
  TAPE_CHECK(ds.images.size(0) == ds.labels.size(0), fn, ": ", labels_path, " has ",
             ds.labels.size(0), " labels but ", images_path, " has ", ds.images.size(0), " images");
  const int64_t* y = ds.labels.data<int64_t>();
  for (int64_t i = 0; i < ds.labels.numel(); ++i)
    TAPE_CHECK(y[i] <= 9, fn, ": ", labels_path, ": label ", y[i], " at index ", i,
               " is not a digit 0..9");
  return ds;
}

}  // namespace tape::data
