// tape::dist's public collectives on top of the transport (comm.hpp): argument
// checks, strided and Mean handling, the world of one, and waiting with a timeout.
#include "tape/dist/dist.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>

#include "tape/core/error.hpp"
#include "tape/core/grad_mode.hpp"
#include "tape/core/strided.hpp"
#include "tape/dist/comm.hpp"

namespace tape::dist {

namespace {

struct World {
  bool initialized = false;
  bool mpi_finalized = false;
  bool mpi = false;  // the transport is in use (an MPI launcher started this process)
  int rank = 0;
  int size = 1;
  double timeout = 300;
};
World& world() {
  static World w;
  return w;
}

/// The launcher's process count when an MPI launcher started this process, else 0.
int launcher_size() {
  auto count = [](const char* v) { return std::max(1, std::atoi(v)); };
  if (const char* v = std::getenv("OMPI_COMM_WORLD_SIZE")) return count(v);  // Open MPI's mpirun
  if (const char* v = std::getenv("PMI_SIZE")) return count(v);              // MPICH's hydra, srun --mpi=pmi2
  if (std::getenv("PMIX_RANK")) {                                             // srun --mpi=pmix
    const char* n = std::getenv("SLURM_NTASKS");
    return n ? count(n) : 1;
  }
  return 0;
}

std::string describe(const Tensor& t) { return str_cat(t.shape(), " ", dtype_name(t.dtype())); }

void check_tensor(const Tensor& t, const char* op) {
  TAPE_CHECK(world().initialized, "dist::", op, ": call dist::init() first");
  TAPE_CHECK(t.defined(), "dist::", op, ": the tensor is undefined");
  TAPE_CHECK(t.dtype() == Dtype::Float32 || t.dtype() == Dtype::Float64 || t.dtype() == Dtype::Int64, "dist::", op,
             ": ", describe(t), " is not supported (Float32, Float64 or Int64)");
}

using detail::bytes;

/// Polls `r` until it completes; past the timeout, aborts the job naming `what`.
void wait_for(detail::Request& r, const std::string& what) {
  if (detail::test(r)) return;
  const auto t0 = std::chrono::steady_clock::now();
  for (int spins = 0;; ++spins) {
    if (detail::test(r)) return;
    if (spins > 2000) std::this_thread::yield();  // leave the core to a rank sharing it
    if ((spins & 1023) == 0) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (waited > world().timeout)
        abort(str_cat(what, " did not complete within ", world().timeout,
                      " s: another rank failed, hangs or did not make the same call (dist::set_timeout, "
                      "TAPE_DIST_TIMEOUT)"));
    }
  }
}

/// Writes contiguous `buf` into strided `t`, element by element (t's own storage).
void write_back(Tensor& t, Tensor& buf) {
  const size_t es = dtype_size(t.dtype());
  char* to = bytes(t);
  const char* from = bytes(buf);
  tape::detail::for_each_strided<1>(t.shape(), {&t.strides()}, [&](int64_t i, const std::array<int64_t, 1>& off) {
    std::memcpy(to + off[0] * int64_t(es), from + i * int64_t(es), es);
  });
}

}  // namespace

void detail::wait(Request& r, const std::string& what) { wait_for(r, what); }

namespace {

void scale(Tensor& t, int64_t n, int size) {
  if (t.dtype() == Dtype::Float32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] /= float(size);
  } else if (t.dtype() == Dtype::Float64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] /= double(size);
  } else {
    int64_t* p = t.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] /= size;
  }
}

}  // namespace

struct Work::State {
  detail::RequestPtr request;    // null: complete already
  std::function<void()> finish;  // after the transport is done (copy back, divide)
  std::string what;              // "all_reduce of [3] Float32", for the timeout message
  bool done = false;
};

Work start(std::shared_ptr<Work::State> s) {
  Work w;
  w.state_ = std::move(s);
  return w;
}

bool Work::is_completed() {
  if (!state_ || state_->done) return true;
  if (state_->request && !detail::test(*state_->request)) return false;
  wait();
  return true;
}

void Work::wait() {
  if (!state_ || state_->done) return;
  if (state_->request) wait_for(*state_->request, state_->what);
  state_->done = true;
  if (state_->finish) state_->finish();
}

void init(int* argc, char*** argv) {
  World& w = world();
  TAPE_CHECK(!w.initialized, "dist::init: already initialised (call it once, at the start of main)");
  TAPE_CHECK(!w.mpi_finalized, "dist::init: MPI cannot be initialised again after dist::finalize()");
  if (const char* t = std::getenv("TAPE_DIST_TIMEOUT")) {
    char* end = nullptr;
    const double s = std::strtod(t, &end);
    TAPE_CHECK(end != t && *end == 0 && s > 0, "dist::init: TAPE_DIST_TIMEOUT='", t,
               "' is not a positive number of seconds");
    w.timeout = s;
  }
  const int launched = launcher_size();
  if (launched > 1)
    TAPE_CHECK(detail::available(), "dist::init: started by an MPI launcher with ", launched,
               " processes, but this libtape was built without MPI: each would train alone (install "
               "libopenmpi-dev and rebuild; docs/distributed.md)");
  if (launched > 0 && detail::available()) {
    std::tie(w.rank, w.size) = detail::start(argc, argv);
    w.mpi = true;
    // an exception escaping main on one rank ends the job instead of leaving the others waiting
    std::set_terminate([] {
      std::string why = "terminate called";
      if (auto e = std::current_exception()) try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          why = str_cat("uncaught exception: ", ex.what());
        } catch (...) {
          why = "uncaught exception";
        }
      abort(why);
    });
  }
  w.initialized = true;
}

void finalize() {
  World& w = world();
  TAPE_CHECK(w.initialized, "dist::finalize: dist::init() was not called");
  if (w.mpi) {
    detail::stop();
    w.mpi_finalized = true;
  }
  w.initialized = false;
  w.mpi = false;
  w.rank = 0;
  w.size = 1;
}

bool is_initialized() { return world().initialized; }
int launched_world_size() { return launcher_size(); }
int rank() { return world().rank; }
int world_size() { return world().size; }
bool available() { return detail::available(); }
std::string backend() { return detail::name(); }

void abort(const std::string& why, int code) {
  std::fprintf(stderr, "tape: rank %d failed: %s\n", world().rank, why.c_str());
  std::fflush(stderr);
  if (world().mpi) detail::abort_job(code);
  std::_Exit(code);
}

void set_timeout(double seconds) {
  TAPE_CHECK(seconds > 0, "dist::set_timeout: seconds must be positive, got ", seconds);
  world().timeout = seconds;
}
double timeout() { return world().timeout; }

// Note: a collective on a strided tensor runs on a contiguous copy that is written
// back into the tensor's own storage when it completes, so every handle and view
// of the tensor sees the result, as PyTorch's in-place collectives do.
Work all_reduce_async(Tensor& t, ReduceOp op) {
  check_tensor(t, "all_reduce");
  auto s = std::make_shared<Work::State>();
  const int size = world().size;
  const int64_t n = t.numel();
  if (size == 1 || n == 0) return start(s);
  NoGradGuard no_grad;
  Tensor buf = t.is_contiguous() ? t : t.contiguous().clone();
  s->what = str_cat("rank ", world().rank, ": all_reduce of ", describe(t));
  s->request = detail::iallreduce(bytes(buf), n, t.dtype(), op);
  s->finish = [t, buf, op, n, size]() mutable {
    if (op == ReduceOp::Mean) scale(buf, n, size);
    if (!t.is_contiguous()) write_back(t, buf);
  };
  return start(s);
}

void all_reduce(Tensor& t, ReduceOp op) { all_reduce_async(t, op).wait(); }

void broadcast(Tensor& t, int root) {
  check_tensor(t, "broadcast");
  TAPE_CHECK(root >= 0 && root < world().size, "dist::broadcast: root ", root, " is outside [0, world_size ",
             world().size, ")");
  if (world().size == 1 || t.numel() == 0) return;
  NoGradGuard no_grad;
  Tensor buf = t.is_contiguous() ? t : t.contiguous().clone();
  auto r = detail::ibroadcast(bytes(buf), t.numel(), t.dtype(), root);
  wait_for(*r, str_cat("rank ", world().rank, ": broadcast of ", describe(t), " from rank ", root));
  if (!t.is_contiguous()) write_back(t, buf);
}

std::vector<Tensor> all_gather(const Tensor& t) {
  check_tensor(t, "all_gather");
  const int size = world().size;
  NoGradGuard no_grad;
  if (size == 1) return {t.detach().clone()};
  Tensor in = t.contiguous();
  Shape shape = t.shape();
  Shape all{int64_t(size)};
  all.insert(all.end(), shape.begin(), shape.end());
  Tensor out = Tensor::empty(all, t.dtype());
  if (t.numel() > 0) {
    auto r = detail::iallgather(bytes(in), bytes(out), t.numel(), t.dtype());
    wait_for(*r, str_cat("rank ", world().rank, ": all_gather of ", describe(t)));
  }
  std::vector<Tensor> parts;
  for (int k = 0; k < size; ++k) parts.push_back(out.select(0, k).clone());
  return parts;
}

void barrier() {
  TAPE_CHECK(world().initialized, "dist::barrier: call dist::init() first");
  if (world().size == 1) return;
  auto r = detail::ibarrier();
  wait_for(*r, str_cat("rank ", world().rank, ": barrier"));
}

}  // namespace tape::dist
