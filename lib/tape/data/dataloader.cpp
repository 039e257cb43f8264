#include "tape/data/dataloader.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "tape/core/grad_mode.hpp"

namespace tape::data {

namespace {

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Seed of the transform generator of dataset sample `index` in epoch `epoch`.
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  const uint64_t s = mix64(seed ^ mix64(uint64_t(epoch) + 0x632be59bd9b4e019ull));
  return mix64(s ^ mix64(uint64_t(index) * 0x9e3779b97f4a7c15ull + 1));
}

const char* bytes(const Tensor& t) {
  return static_cast<const char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}
char* bytes(Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}

/// Rows `idx[0..n)` of contiguous `src` (dim 0) gathered into a new tensor.
Tensor gather_rows(const Tensor& src, const int64_t* idx, int64_t n, bool parallel) {
  Shape shape = src.shape();
  shape[0] = n;
  Tensor out = Tensor::empty(shape, src.dtype());
  const size_t row_bytes = size_t(src.numel() / std::max<int64_t>(src.size(0), 1)) * dtype_size(src.dtype());
  const char* from = bytes(src);
  char* to = bytes(out);
  // A batch of MNIST images is ~3 MB of scattered rows: worth both cores (but not
  // from a worker thread, which must leave the cores to the training loop).
  if (!parallel || size_t(n) * row_bytes < (size_t(1) << 20)) {
    for (int64_t i = 0; i < n; ++i) std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes, row_bytes);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) std::memcpy(to + i * row_bytes, from + idx[i] * row_bytes, row_bytes);
  }
  return out;
}

/// Copies `t` (any strides) into row `k` of `rows` ([B, ...t.shape()], contiguous).
void put_row(Tensor& rows, int64_t k, const Tensor& t) {
  const Tensor c = t.contiguous();
  const size_t n = size_t(c.numel()) * dtype_size(c.dtype());
  std::memcpy(bytes(rows) + size_t(k) * n, bytes(c), n);
}

Shape with_batch(int64_t n, const Shape& s) {
  Shape out{n};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Source: what building a batch needs; immutable, shared with the workers.

struct DataLoader::Source {
  std::shared_ptr<const Dataset> ds;
  std::shared_ptr<const TensorDataset> tensors;  // ds itself when it is a TensorDataset (contiguous)
  DataLoaderOptions opt;
  int64_t size = 0;

  int64_t num_batches() const { return opt.drop_last ? size / opt.batch_size : (size + opt.batch_size - 1) / opt.batch_size; }

  /// Batch `i` of an epoch with sample order `order`; `in_worker` keeps it on this thread.
  Batch make(int64_t epoch, const std::vector<int64_t>& order, int64_t i, bool in_worker) const {
    NoGradGuard no_grad;  // grad mode is thread-local: workers set it themselves
    const int64_t start = i * opt.batch_size, n = std::min(opt.batch_size, size - start);
    const int64_t* idx = order.data() + start;
    if (tensors && !opt.transform)  // fast path: whole rows, no per-sample get()
      return {gather_rows(tensors->images, idx, n, !in_worker), gather_rows(tensors->labels, idx, n, !in_worker)};

    Batch b;
    Shape data_shape, target_shape;
    for (int64_t k = 0; k < n; ++k) {
      Example ex = tensors ? tensors->get(idx[k]) : ds->get(idx[k]);
      TAPE_CHECK(ex.data.defined() && ex.target.defined(), "DataLoader: example ", idx[k],
                 " has an undefined ", ex.data.defined() ? "target" : "data", " tensor");
      if (opt.transform) {
        Generator g(sample_seed(opt.seed, epoch, idx[k]));
        ex.data = opt.transform(ex.data, g);
        TAPE_CHECK(ex.data.defined(), "DataLoader: the transform returned an undefined tensor for example ", idx[k]);
      }
      if (k == 0) {
        data_shape = ex.data.shape(), target_shape = ex.target.shape();
        b.x = Tensor::empty(with_batch(n, data_shape), ex.data.dtype());
        b.y = Tensor::empty(with_batch(n, target_shape), ex.target.dtype());
      }
      TAPE_CHECK(ex.data.shape() == data_shape && ex.data.dtype() == b.x.dtype(), "DataLoader: example ", idx[k],
                 " has data ", ex.data.shape(), " ", dtype_name(ex.data.dtype()), " but example ", idx[0], " has ",
                 data_shape, " ", dtype_name(b.x.dtype()), "; examples of a batch must agree");
      TAPE_CHECK(ex.target.shape() == target_shape && ex.target.dtype() == b.y.dtype(), "DataLoader: example ",
                 idx[k], " has target ", ex.target.shape(), " ", dtype_name(ex.target.dtype()), " but example ",
                 idx[0], " has ", target_shape, " ", dtype_name(b.y.dtype()), "; examples of a batch must agree");
      put_row(b.x, k, ex.data);
      put_row(b.y, k, ex.target);
    }
    return b;
  }
};

// ---------------------------------------------------------------------------
// Prefetcher: num_workers threads build the batches of one epoch ahead of the
// consumer, at most prefetch_factor·num_workers batches past the last one taken.

class DataLoader::Prefetcher {
 public:
  Prefetcher(std::shared_ptr<const Source> src, int64_t epoch, std::shared_ptr<const std::vector<int64_t>> order)
      : src_(std::move(src)), epoch_(epoch), order_(std::move(order)), num_batches_(src_->num_batches()),
        capacity_(int64_t(src_->opt.prefetch_factor) * src_->opt.num_workers) {
    const int64_t n = std::min<int64_t>(src_->opt.num_workers, num_batches_);  // more would idle
    threads_.reserve(size_t(n));
    for (int64_t w = 0; w < n; ++w) threads_.emplace_back([this] { run(); });
  }

  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  /// The batch the consumer takes next.
  int64_t expected() const { return taken_; }

  /// Waits for batch `taken_`, hands it over (or rethrows the worker's exception).
  Batch take() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t i = taken_;
    ready_cv_.wait(lock, [&] { return ready_.count(i) > 0; });
    Result r = std::move(ready_.at(i));
    ready_.erase(i);
    taken_ = i + 1;
    lock.unlock();
    work_cv_.notify_all();
    if (r.error) std::rethrow_exception(r.error);
    return std::move(r.batch);
  }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };

  void run() {
    for (;;) {
      int64_t j = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_cv_.wait(lock, [&] { return stop_ || next_ >= num_batches_ || next_ < taken_ + capacity_; });
        if (stop_ || next_ >= num_batches_) return;
        j = next_++;
      }
      Result r;
      try {
        r.batch = src_->make(epoch_, *order_, j, /*in_worker=*/true);
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(j, std::move(r));
      }
      ready_cv_.notify_all();
    }
  }

  const std::shared_ptr<const Source> src_;
  const int64_t epoch_;
  const std::shared_ptr<const std::vector<int64_t>> order_;
  const int64_t num_batches_, capacity_;

  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers: room in the queue, or stop
  std::condition_variable ready_cv_;  // consumer: a batch arrived
  int64_t next_ = 0;                  // next batch a worker claims
  int64_t taken_ = 0;                 // batches handed to the consumer
  bool stop_ = false;
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> threads_;  // last: started once everything above exists
};

// ---------------------------------------------------------------------------
// DataLoader

DataLoader::DataLoader(std::shared_ptr<const Dataset> ds, DataLoaderOptions options) {
  TAPE_CHECK(ds != nullptr, "DataLoader: the dataset is null");
  TAPE_CHECK(options.batch_size > 0, "DataLoader: batch_size must be positive, got ", options.batch_size);
  TAPE_CHECK(options.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", options.num_workers);
  TAPE_CHECK(options.prefetch_factor >= 1, "DataLoader: prefetch_factor must be >= 1, got ", options.prefetch_factor);
  auto src = std::make_shared<Source>();
  if (const auto* t = dynamic_cast<const TensorDataset*>(ds.get())) {
    TAPE_CHECK(t->images.defined() && t->labels.defined(), "DataLoader: the dataset has no images or labels");
    TAPE_CHECK(t->images.dim() >= 1 && t->labels.dim() >= 1 && t->images.size(0) == t->labels.size(0),
               "DataLoader: images ", t->images.shape(), " and labels ", t->labels.shape(),
               " disagree on the number of samples");
    src->tensors = std::make_shared<const TensorDataset>(t->images.contiguous(), t->labels.contiguous());
    ds = src->tensors;
  }
  TAPE_CHECK(options.world_size >= 1, "DataLoader: world_size must be >= 1, got ", options.world_size);
  TAPE_CHECK(options.rank >= 0 && options.rank < options.world_size, "DataLoader: rank ", options.rank,
             " is outside [0, world_size ", options.world_size, ")");
  const int64_t n = ds->size();
  TAPE_CHECK(n > 0, "DataLoader: the dataset is empty (0 samples); nothing to iterate over");
  // a shard: ceil(n / N) samples (the order is padded to a multiple of N)
  src->size = (n + options.world_size - 1) / options.world_size;
  src->ds = std::move(ds);
  src->opt = std::move(options);
  TAPE_CHECK(src->num_batches() > 0, "DataLoader: drop_last with batch_size ", src->opt.batch_size, " > ",
             src->size, " samples leaves no batch");
  src_ = std::move(src);
}

DataLoader::DataLoader(TensorDataset ds, int64_t batch_size, bool shuffle, uint64_t seed)
    : DataLoader(std::make_shared<const TensorDataset>(std::move(ds)),
                 DataLoaderOptions{.batch_size = batch_size, .shuffle = shuffle, .seed = seed}) {}

DataLoader::~DataLoader() = default;
DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;

std::vector<int64_t> DataLoader::permutation(int64_t e) const {
  std::vector<int64_t> order(size_t(src_->ds->size()));
  std::iota(order.begin(), order.end(), int64_t(0));
  if (!src_->opt.shuffle) return order;
  Generator g(src_->opt.seed ^ mix64(uint64_t(e) + 0x9e3779b97f4a7c15ull));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
  return order;
}

std::vector<int64_t> DataLoader::indices(int64_t e) const {
  std::vector<int64_t> order = permutation(e);
  const int64_t world = src_->opt.world_size;
  if (world == 1) return order;
  // DistributedSampler: pad with the order's first samples up to a multiple of
  // the world size, then every world-th sample from this rank's position
  const int64_t n = int64_t(order.size()), padded = src_->size * world;
  std::vector<int64_t> shard;
  shard.reserve(size_t(src_->size));
  for (int64_t k = src_->opt.rank; k < padded; k += world) shard.push_back(order[size_t(k % n)]);
  return shard;
}

int64_t DataLoader::num_samples() const { return src_->size; }

DataLoader::Iterator DataLoader::begin() {
  prefetcher_.reset();  // joins the workers of an unfinished pass
  current_epoch_ = epoch_++;
  order_ = std::make_shared<const std::vector<int64_t>>(indices(current_epoch_));
  if (src_->opt.num_workers > 0) prefetcher_ = std::make_unique<Prefetcher>(src_, current_epoch_, order_);
  return Iterator(this, 0);
}

DataLoader::Iterator DataLoader::end() { return Iterator(this, num_batches()); }

void DataLoader::set_epoch(int64_t e) {
  TAPE_CHECK(e >= 0, "DataLoader::set_epoch: epoch must be >= 0, got ", e);
  epoch_ = e;
}

int64_t DataLoader::num_batches() const { return src_->num_batches(); }
int64_t DataLoader::batch_size() const { return src_->opt.batch_size; }
bool DataLoader::shuffle() const { return src_->opt.shuffle; }
uint64_t DataLoader::seed() const { return src_->opt.seed; }
const DataLoaderOptions& DataLoader::options() const { return src_->opt; }
const Dataset& DataLoader::dataset() const { return *src_->ds; }

Batch DataLoader::batch(int64_t i) const {
  TAPE_CHECK(0 <= i && i < num_batches(), "DataLoader::batch: index ", i, " is outside [0, ", num_batches(), ")");
  TAPE_CHECK(order_ != nullptr, "DataLoader::batch: no epoch has begun (call begin())");
  return src_->make(current_epoch_, *order_, i, /*in_worker=*/false);
}

Batch DataLoader::next(int64_t i) {
  if (!prefetcher_ || prefetcher_->expected() != i) return batch(i);  // out of order: build it here
  Batch b = prefetcher_->take();
  if (i + 1 == num_batches()) prefetcher_.reset();  // the workers have finished: join them now
  return b;
}

DataLoader::Iterator::Iterator(DataLoader* loader, int64_t index) : loader_(loader), index_(index) {
  if (index_ < loader_->num_batches()) batch_ = loader_->next(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (++index_ < loader_->num_batches()) batch_ = loader_->next(index_);
  else batch_ = Batch{};
  return *this;
}

}  // namespace tape::data
