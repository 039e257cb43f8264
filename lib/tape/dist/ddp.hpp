#pragma once
/// \file DistributedDataParallel: data-parallel training of one model replica per
/// rank (PyTorch's torch.nn.parallel.DistributedDataParallel).
///
///   dist::init(&argc, &argv);
///   auto ddp = std::make_shared<dist::DistributedDataParallel>(model);
///   optim::SGD opt(ddp->parameters(), 0.1);
///   Tensor loss = cross_entropy((*ddp)(x_shard), y_shard);  // this rank's share
///   opt.zero_grad();
///   loss.backward();   // returns with every gradient averaged over the ranks
///   opt.step();        // identical on every rank
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tape/dist/dist.hpp"
#include "tape/nn/module.hpp"

namespace tape::dist {

// Note: how DDP overlaps communication with backward. The parameters are split
// into buckets of about bucket_bytes, in reverse registration order (the last
// layers' gradients are ready first). Each parameter carries a post-accumulate
// gradient hook; when the last gradient of a bucket has arrived, the bucket is
// copied (pre-divided by the world size) into one flat buffer and its all-reduce
// starts non-blocking, while the engine goes on with the earlier layers. Buckets
// start in index order on every rank, so all ranks issue the same collectives in
// the same order. A callback queued on the engine waits for every bucket at the
// end of backward and copies the averaged gradients back: when backward()
// returns, .grad() holds the average over the ranks. The last bucket (the first
// layers, produced last) is reduced there, through shared memory when every rank
// is on this node (ddp.cpp, reduce_shared). Parameters that got no
// gradient in this pass count as zeros (PyTorch's find_unused_parameters).
class DistributedDataParallel : public nn::Module {
 public:
  /// Wraps `module` (registered as child "module": state_dict names start with
  /// "module.", as in PyTorch). Broadcasts rank 0's parameters and buffers to the
  /// other ranks and checks that every rank has the same parameter shapes.
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, size_t bucket_bytes = 25u << 20);
  ~DistributedDataParallel() override;

  /// Broadcasts rank 0's buffers (BatchNorm running statistics, PyTorch's
  /// broadcast_buffers), then runs the module.
  Tensor forward(const Tensor& x) override;
  /// The wrapped module itself.
  nn::Module& module();
  std::shared_ptr<nn::Module> module_ptr() const { return module_; }
  std::string type_name() const override { return "DistributedDataParallel"; }

  /// While false, backward leaves gradients local (PyTorch's no_sync(): gradient
  /// accumulation over several backward passes, synchronised on the last one).
  void set_sync(bool on) { sync_ = on; }
  bool sync() const { return sync_; }
  /// When on, backward leaves each parameter's .grad() as a view into its bucket's
  /// buffer instead of copying the average back (PyTorch's gradient_as_bucket_view):
  /// one copy less per step, but a gradient kept across steps is overwritten by the
  /// next backward. Off by default, as in PyTorch.
  void set_gradient_as_bucket_view(bool on) { as_view_ = on; }

  struct Stats {
    int64_t steps = 0;            ///< backward passes synchronised
    size_t buckets = 0;           ///< buckets per pass
    int64_t bytes = 0;            ///< gradient bytes all-reduced per pass
    size_t launched_early = 0;    ///< buckets of the last pass started before backward ended
    double wait_seconds = 0;      ///< total time backward waited for all-reduces at its end
    double last_wait_seconds = 0;
  };
  const Stats& stats() const { return stats_; }
  /// The parameter names of each bucket, in launch order.
  std::vector<std::vector<std::string>> bucket_names() const;

 private:
  struct Bucket;
  void begin_pass();
  void mark_ready(size_t param);
  void gather_gradients(const Bucket& b, char* flat) const;  // pre-divided, zeros where none arrived
  void launch(Bucket& b);
  void reduce_shared(Bucket& b);
  void finish_pass();
  void sync_buffers();

  std::shared_ptr<nn::Module> module_;
  std::vector<Tensor> params_;            // registration order
  std::vector<std::string> names_;
  std::vector<int> hook_handles_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::pair<size_t, int64_t>> slot_;  // param → (bucket, offset in elements)
  std::vector<char> ready_;               // param got its gradient in this pass
  size_t next_bucket_ = 0;                // the first bucket not yet started
  bool in_pass_ = false;
  bool sync_ = true;
  bool as_view_ = false;
  Stats stats_;
};

}  // namespace tape::dist
