#pragma once
// The transport under tape::dist (private, not installed): one implementation
// per build — comm_mpi.cpp (Open MPI; the only file that includes mpi.h) or
// comm_none.cpp (built without MPI). dist.cpp puts the public API on top and
// answers every call itself in a world of one, so the transport is only used
// when an MPI launcher started the process.
#include <cstdint>
#include <memory>
#include <string>

#include "tape/core/dtype.hpp"
#include "tape/core/tensor.hpp"
#include "tape/dist/dist.hpp"

namespace tape::dist::detail {

/// The first byte of `t`'s elements in its storage (what the transport reads and writes).
inline char* bytes(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.impl()->offset * int64_t(dtype_size(t.dtype()));
}

/// One non-blocking collective (an MPI request).
struct Request;
using RequestPtr = std::shared_ptr<Request>;

/// True when this build has a transport (MPI).
bool available();
/// MPI_Init_thread; returns (rank, size).
std::pair<int, int> start(int* argc, char*** argv);
void stop();
std::string name();

/// In-place all-reduce of `count` elements (op: Sum, Max or Min).
RequestPtr iallreduce(void* data, int64_t count, Dtype dtype, ReduceOp op);
RequestPtr ibroadcast(void* data, int64_t count, Dtype dtype, int root);
/// `in` (count elements) from every rank into `out` (count × size, rank order).
RequestPtr iallgather(const void* in, void* out, int64_t count, Dtype dtype);
RequestPtr ibarrier();
/// True once complete; every call also drives the progress of all collectives
/// in flight (Open MPI progresses non-blocking collectives only inside MPI calls).
bool test(Request& r);
/// MPI_Abort on the whole job.
[[noreturn]] void abort_job(int code);

/// Memory every rank can read and write (an MPI-3 shared window,
/// MPI_Win_allocate_shared), `bytes` per rank; null unless every rank of the job
/// runs on this node. A collective call.
struct SharedWindow;
std::shared_ptr<SharedWindow> shared_window(int64_t bytes);
/// Rank `k`'s segment, mapped into this process.
void* segment(SharedWindow& w, int k);
/// MPI_Win_sync: orders this rank's accesses to the window around a barrier.
void sync(SharedWindow& w);

/// Waits for `r` (dist.cpp): polls test() and aborts the job naming `what` when
/// dist::timeout() passes.
void wait(Request& r, const std::string& what);

}  // namespace tape::dist::detail
