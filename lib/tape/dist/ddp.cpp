// DistributedDataParallel (ddp.hpp has the design note): buckets, gradient hooks,
// the end-of-backward callback, parameter and buffer broadcasts.
#include "tape/dist/ddp.hpp"

#include <chrono>
#include <cstring>
#include <map>
#include <vector>

#include "tape/autograd/node.hpp"
#include "tape/core/error.hpp"
#include "tape/core/dispatch.hpp"
#include "tape/core/grad_mode.hpp"
#include "tape/dist/comm.hpp"

namespace tape::dist {

namespace {

using detail::bytes;

/// Broadcasts `tensors` from rank 0 through one flat buffer per dtype (one
/// collective instead of one per tensor). Contiguous tensors only.
void broadcast_coalesced(const std::vector<Tensor>& tensors) {
  std::map<Dtype, std::vector<Tensor>> by_dtype;
  for (const Tensor& t : tensors)
    if (t.numel() > 0) by_dtype[t.dtype()].push_back(t);
  for (auto& [dtype, group] : by_dtype) {
    int64_t total = 0;
    for (const Tensor& t : group) total += t.numel();
    Tensor flat = Tensor::empty({total}, dtype);
    const size_t es = dtype_size(dtype);
    int64_t at = 0;
    for (const Tensor& t : group) std::memcpy(bytes(flat) + at * int64_t(es), bytes(t), size_t(t.numel()) * es), at += t.numel();
    broadcast(flat, 0);
    at = 0;
    for (const Tensor& t : group) std::memcpy(bytes(t), bytes(flat) + at * int64_t(es), size_t(t.numel()) * es), at += t.numel();
  }
}

/// A multiply-by-`s` copy of n elements (s = 1/world_size: a power of two is exact).
void scaled_copy(void* to, const void* from, int64_t n, Dtype d, double s) {
  if (d == Dtype::Float32) {
    auto* o = static_cast<float*>(to);
    const auto* i = static_cast<const float*>(from);
    const float f = float(s);
    for (int64_t k = 0; k < n; ++k) o[k] = i[k] * f;
  } else {
    auto* o = static_cast<double*>(to);
    const auto* i = static_cast<const double*>(from);
    for (int64_t k = 0; k < n; ++k) o[k] = i[k] * s;
  }
}

}  // namespace

struct DistributedDataParallel::Bucket {
  Dtype dtype = Dtype::Float32;
  std::vector<size_t> params;  // indices into params_
  int64_t numel = 0;
  Tensor flat;
  size_t pending = 0;          // gradients still to arrive in this pass
  bool launched = false;
  Work work;
  std::shared_ptr<detail::SharedWindow> shm;  // all ranks on this node: the end-of-backward path
  int half = 0;                               // which half of each segment this pass writes
};

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, size_t bucket_bytes)
    : module_(std::move(module)) {
  TAPE_CHECK(module_ != nullptr, "DistributedDataParallel: the module is null");
  TAPE_CHECK(is_initialized(), "DistributedDataParallel: call dist::init() first");
  TAPE_CHECK(bucket_bytes > 0, "DistributedDataParallel: bucket_bytes must be positive");
  register_module("module", module_);
  for (auto& [name, p] : module_->named_parameters()) {
    if (!p.requires_grad()) continue;
    TAPE_CHECK(p.is_contiguous(), "DistributedDataParallel: parameter ", name, " ", p.shape(), " is not contiguous");
    TAPE_CHECK(p.dtype() == Dtype::Float32 || p.dtype() == Dtype::Float64, "DistributedDataParallel: parameter ", name,
               " is ", dtype_name(p.dtype()), " (Float32 or Float64 parameters)");
    params_.push_back(p);
    names_.push_back(name);
  }

  // Every rank must hold the same model: compare (count, shapes) with rank 0's.
  {
    std::vector<int64_t> sig{int64_t(params_.size())};
    for (const Tensor& p : params_) {
      sig.push_back(p.dim());
      for (int64_t s : p.shape()) sig.push_back(s);
    }
    Tensor mine = Tensor::empty({int64_t(sig.size())}, Dtype::Int64);
    std::memcpy(mine.data<int64_t>(), sig.data(), sig.size() * sizeof(int64_t));
    // every rank makes the same calls: lengths first (a flag all-reduced), then the signatures
    auto any_rank = [](bool differs) {
      Tensor bad = full({1}, differs ? 1.0 : 0.0, Dtype::Int64);
      all_reduce(bad, ReduceOp::Max);
      return bad.item<int64_t>() != 0;
    };
    Tensor root_len = full({1}, double(sig.size()), Dtype::Int64);
    broadcast(root_len, 0);
    bool same = root_len.item<int64_t>() == int64_t(sig.size());
    bool differs = any_rank(!same);
    if (!differs) {
      Tensor root = mine.clone();
      broadcast(root, 0);
      same = std::memcmp(root.data<int64_t>(), mine.data<int64_t>(), sig.size() * sizeof(int64_t)) == 0;
      differs = any_rank(!same);
    }
    TAPE_CHECK(!differs, "DistributedDataParallel: ",
               same ? "another rank's model" : str_cat("rank ", rank(), "'s model (", params_.size(), " parameters)"),
               " differs from rank 0's in its parameter count or shapes; every rank must build the same model");
  }
  {
    NoGradGuard no_grad;
    std::vector<Tensor> state = params_;
    for (const Tensor& b : module_->buffers()) {
      TAPE_CHECK(b.is_contiguous(), "DistributedDataParallel: a buffer ", b.shape(), " is not contiguous");
      state.push_back(b);
    }
    broadcast_coalesced(state);
  }

  // Buckets: reverse registration order, one dtype each, about bucket_bytes.
  slot_.resize(params_.size());
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    const int64_t nbytes = p.numel() * int64_t(dtype_size(p.dtype()));
    if (buckets_.empty() || buckets_.back()->dtype != p.dtype() ||
        (buckets_.back()->numel * int64_t(dtype_size(p.dtype())) + nbytes > int64_t(bucket_bytes) &&
         !buckets_.back()->params.empty())) {
      buckets_.push_back(std::make_unique<Bucket>());
      buckets_.back()->dtype = p.dtype();
    }
    Bucket& b = *buckets_.back();
    slot_[k] = {buckets_.size() - 1, b.numel};
    b.params.push_back(k);
    b.numel += p.numel();
  }
  for (auto& b : buckets_) {
    b->flat = Tensor::empty({b->numel}, b->dtype);
    stats_.bytes += b->numel * int64_t(dtype_size(b->dtype));
  }
  // the last bucket (the first layers: their gradients come last) is reduced when
  // backward ends, through shared memory when the node has every rank (see
  // reduce_shared); two halves: a rank may start the next pass while another still
  // reads this one
  if (world_size() > 1 && !buckets_.empty()) {
    Bucket& last = *buckets_.back();
    last.shm = detail::shared_window(2 * last.numel * int64_t(dtype_size(last.dtype)));
  }
  stats_.buckets = buckets_.size();
  ready_.assign(params_.size(), 0);

  if (world_size() > 1)
    for (size_t k = 0; k < params_.size(); ++k)
      hook_handles_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Tensor&) {
        if (sync_) mark_ready(k);
      }));
}

DistributedDataParallel::~DistributedDataParallel() {
  for (size_t k = 0; k < hook_handles_.size(); ++k) params_[k].remove_hook(hook_handles_[k]);
}

nn::Module& DistributedDataParallel::module() { return *module_; }

std::vector<std::vector<std::string>> DistributedDataParallel::bucket_names() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& b : buckets_) {
    out.emplace_back();
    for (size_t k : b->params) out.back().push_back(names_[k]);
  }
  return out;
}

void DistributedDataParallel::sync_buffers() {
  std::vector<Tensor> bufs = module_->buffers();
  if (bufs.empty() || world_size() == 1) return;
  NoGradGuard no_grad;
  broadcast_coalesced(bufs);
}

Tensor DistributedDataParallel::forward(const Tensor& x) {
  in_pass_ = false;  // a backward that threw never reached finish_pass
  if (is_training()) sync_buffers();
  return (*module_)(x);
}

void DistributedDataParallel::begin_pass() {
  in_pass_ = true;
  next_bucket_ = 0;
  std::fill(ready_.begin(), ready_.end(), 0);
  for (auto& b : buckets_) {
    b->pending = b->params.size();
    b->launched = false;
    b->work = Work();
  }
  autograd::queue_callback([this] { finish_pass(); });
}

void DistributedDataParallel::mark_ready(size_t k) {
  if (!in_pass_) begin_pass();
  if (ready_[k]) return;
  ready_[k] = 1;
  Bucket& b = *buckets_[slot_[k].first];
  --b.pending;
  // start every bucket, in order, whose gradients are all here (a shared-memory
  // bucket waits for the end of backward, on every rank alike)
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_]->pending == 0 && !buckets_[next_bucket_]->shm)
    launch(*buckets_[next_bucket_++]);
  // drive the collectives in flight (Open MPI progresses them only inside MPI calls)
  for (size_t i = 0; i < next_bucket_; ++i) buckets_[i]->work.is_completed();
}

void DistributedDataParallel::gather_gradients(const Bucket& b, char* flat) const {
  const double inv = 1.0 / double(world_size());
  const size_t es = dtype_size(b.dtype);
  for (size_t k : b.params) {
    const Tensor& p = params_[k];
    char* to = flat + slot_[k].second * int64_t(es);
    Tensor g = p.grad();
    if (ready_[k] && g.defined()) {
      Tensor gc = g.contiguous();
      scaled_copy(to, bytes(gc), p.numel(), b.dtype, inv);
    } else {
      std::memset(to, 0, size_t(p.numel()) * es);  // no gradient on this rank in this pass
    }
  }
}

void DistributedDataParallel::launch(Bucket& b) {
  gather_gradients(b, bytes(b.flat));
  b.launched = true;
  b.work = all_reduce_async(b.flat, ReduceOp::Sum);
}

// Note: the last bucket holds the first layers, whose gradients backward produces
// last: nothing is left to overlap its reduction with. When every rank runs on
// this node it is summed at the end of backward through shared memory
// instead of MPI_Iallreduce: each rank writes its (pre-divided) gradients into
// its segment of an MPI-3 shared window; after a barrier, rank r sums slice r of
// all segments into its own segment; after a second barrier every rank copies
// the N slices into its bucket. One pass over the data where Open MPI's
// Rabenseifner all-reduce makes several through its shared-memory transport: a
// synthetic mlp4 step took 5.04–5.20 ms instead of 5.15–5.65 ms (docs/distributed.md). Each slice
// is summed once, in rank order, so every rank gets the same bits.
void DistributedDataParallel::reduce_shared(Bucket& b) {
  const int n = world_size(), r = rank();
  const int64_t es = int64_t(dtype_size(b.dtype)), off = b.half * b.numel * es;
  char* mine = static_cast<char*>(detail::segment(*b.shm, r)) + off;
  gather_gradients(b, mine);
  auto barrier = [&](const char* when) {
    detail::sync(*b.shm);
    auto req = detail::ibarrier();
    detail::wait(*req, str_cat("rank ", r, ": DistributedDataParallel's shared-memory reduction (", when, ")"));
    detail::sync(*b.shm);
  };
  barrier("gradients written");
  const int64_t lo = b.numel * r / n, hi = b.numel * (r + 1) / n;
  tape::detail::visit_float(b.dtype, "DistributedDataParallel", [&]<class T>() {
    std::vector<const T*> seg(static_cast<size_t>(n), nullptr);
    for (int k = 0; k < n; ++k)
      seg[size_t(k)] = reinterpret_cast<const T*>(static_cast<const char*>(detail::segment(*b.shm, k)) + off);
    T* out = reinterpret_cast<T*>(mine);
    for (int64_t i = lo; i < hi; ++i) {
      T sum = seg[0][i];
      for (int k = 1; k < n; ++k) sum += seg[size_t(k)][i];
      out[i] = sum;
    }
  });
  barrier("slices summed");
  for (int k = 0; k < n; ++k) {
    const int64_t a = b.numel * k / n, z = b.numel * (k + 1) / n;
    std::memcpy(bytes(b.flat) + a * es, static_cast<const char*>(detail::segment(*b.shm, k)) + off + a * es,
                size_t(z - a) * size_t(es));
  }
  b.half ^= 1;
  b.launched = true;
  b.work = Work();  // complete
}

void DistributedDataParallel::finish_pass() {
  const auto t0 = std::chrono::steady_clock::now();
  stats_.launched_early = next_bucket_;
  while (next_bucket_ < buckets_.size()) {
    Bucket& b = *buckets_[next_bucket_++];
    if (b.shm) reduce_shared(b);
    else launch(b);
  }
  NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b->work.wait();
    const size_t es = dtype_size(b->dtype);
    for (size_t k : b->params) {
      Tensor& p = params_[k];
      if (as_view_) {
        p.set_grad(b->flat.narrow(0, slot_[k].second, p.numel()).view(p.shape()));
        continue;
      }
      const char* from = bytes(b->flat) + slot_[k].second * int64_t(es);
      Tensor g = p.grad();
      if (!g.defined() || !g.is_contiguous()) {
        Tensor fresh = Tensor::empty(p.shape(), p.dtype());
        std::memcpy(bytes(fresh), from, size_t(p.numel()) * es);
        if (g.defined()) g.copy_(fresh);
        else p.set_grad(fresh);
      } else {
        std::memcpy(bytes(g), from, size_t(p.numel()) * es);
      }
    }
  }
  in_pass_ = false;
  stats_.last_wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.wait_seconds += stats_.last_wait_seconds;
  ++stats_.steps;
}

}  // namespace tape::dist
