#pragma once
/// \file Collectives across processes (namespace tape::dist), on Open MPI.
///
///   int main(int argc, char** argv) {
///     tape::dist::init(&argc, &argv);           // a world of one outside mpirun
///     Tensor t = tape::full({3}, float(tape::dist::rank()));
///     tape::dist::all_reduce(t, tape::dist::ReduceOp::Sum);
///     tape::dist::finalize();                   // explicitly, at the end of main
///   }
///
/// Launch: `mpirun -np 2 ./prog` (docs/distributed.md). MPI stays out of this
/// header: programs compile and link against libtape only.
#include <memory>
#include <string>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::dist {

enum class ReduceOp { Sum, Mean, Max, Min };

/// Joins the job. Under mpirun (or srun with PMIx) it initialises MPI; started
/// any other way it makes a world of one, where every collective is a cheap
/// no-op. Calling it twice is an error. It also installs a terminate handler:
/// an exception that escapes main on one rank aborts the whole job, naming the rank.
void init(int* argc = nullptr, char*** argv = nullptr);
/// Leaves the job (MPI_Finalize after a barrier). Call it at the end of main,
/// never from a destructor or exit handler: with Open MPI 4.1 a finalize there
/// hangs a job whose other rank has failed.
void finalize();
/// True between init() and finalize(), a world of one included.
bool is_initialized();
/// This process's rank (0 before init).
int rank();
/// Number of processes in the job (1 before init and outside mpirun).
int world_size();
/// The number of processes an MPI launcher (mpirun, srun) started this job with,
/// 0 when none did; known before init().
int launched_world_size();
/// True when libtape was built with MPI (meson option `distributed`).
bool available();
/// "Open MPI v4.1.4", or why there is none.
std::string backend();

/// Ends every process of the job with `code`, after printing
/// "tape: rank R failed: <why>" to stderr (MPI_Abort). In a world of one it exits.
[[noreturn]] void abort(const std::string& why, int code = 1);

/// Seconds a collective may wait for the other ranks before the job is aborted
/// with a message naming the operation (a rank that died, hangs or skipped the
/// call). Default 300, or the environment variable TAPE_DIST_TIMEOUT.
void set_timeout(double seconds);
double timeout();

/// A collective in flight (async_op in PyTorch). wait() blocks until it is
/// complete (bounded by timeout()); the tensor must stay alive until then.
class Work {
 public:
  Work() = default;
  bool is_completed();
  void wait();

  struct State;  // backend's request and what to do when it completes

 private:
  friend Work start(std::shared_ptr<State>);
  std::shared_ptr<State> state_;
};

/// t ← op over every rank's t, in place: t's own storage changes, so every handle
/// (and view) of it sees the result. Float32, Float64 or Int64, any strides. Mean
/// divides the sum by world_size (Int64: rounded toward zero).
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
/// The same, returning at once; the result is in t after wait().
Work all_reduce_async(Tensor& t, ReduceOp op = ReduceOp::Sum);
/// t ← root's t, in place (same shape and dtype on every rank).
void broadcast(Tensor& t, int root = 0);
/// Every rank's t, in rank order (same shape and dtype on every rank).
std::vector<Tensor> all_gather(const Tensor& t);
/// Returns when every rank has called it.
void barrier();

}  // namespace tape::dist
