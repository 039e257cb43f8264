// tape::dist's transport on MPI (Open MPI 4.1 on Debian): the only file of tape
// that includes mpi.h. Every collective is started non-blocking (MPI_I*) and
// completed by test(); dist.cpp waits with a timeout, so a blocked rank can end
// the job instead of hanging it.
// the C API only: Open MPI's and MPICH's deprecated C++ bindings stay out
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "tape/core/error.hpp"
#include "tape/dist/comm.hpp"

namespace tape::dist::detail {

struct Request {
  MPI_Request req = MPI_REQUEST_NULL;
  bool done = false;
};

namespace {

// Note: MPI is initialised with MPI_THREAD_SERIALIZED and every call below holds
// this mutex, so hooks running on the backward thread and calls from the main
// thread never enter MPI at the same time.
std::mutex mpi_mutex;

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(str_cat("dist: ", call, " failed: ", std::string(text, size_t(len))));
}

MPI_Datatype mpi_type(Dtype d) {
  switch (d) {
    case Dtype::Float32: return MPI_FLOAT;
    case Dtype::Float64: return MPI_DOUBLE;
    case Dtype::Int64: return MPI_INT64_T;
    default: throw Error(str_cat("dist: ", dtype_name(d), " tensors are not supported (Float32, Float64 or Int64)"));
  }
}

int mpi_count(int64_t n) {
  TAPE_CHECK(n >= 0 && n <= INT_MAX, "dist: ", n, " elements is more than one collective can carry (", INT_MAX, ")");
  return int(n);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_SUM;  // Mean: dist.cpp divides the sum
  }
}

}  // namespace

struct SharedWindow {
  MPI_Win win = MPI_WIN_NULL;
  std::vector<void*> base;  // every rank's segment
  ~SharedWindow();
  void free_window();       // collective; under mpi_mutex
};

namespace {
// Note: windows still alive at finalize (a DistributedDataParallel that outlives
// dist::finalize(), as in a main that finalizes before its locals are destroyed)
// are freed by stop() before MPI_Finalize, in creation order on every rank (freeing
// is collective); their destructors then do nothing.
std::vector<SharedWindow*> live_windows;  // guarded by mpi_mutex
}  // namespace

void SharedWindow::free_window() {
  if (win == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);
  win = MPI_WIN_NULL;
}

SharedWindow::~SharedWindow() {
  std::lock_guard lock(mpi_mutex);
  std::erase(live_windows, this);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) free_window();
}

bool available() { return true; }

std::pair<int, int> start(int* argc, char*** argv) {
  std::lock_guard lock(mpi_mutex);
  // Note: Open MPI's non-blocking all-reduce (libnbc) defaults to recursive doubling,
  // which on 2 ranks of one machine took 373 µs for DDP's 1.36 MB bucket (mlp4) and
  // 2.7 ms for 8 MB; Rabenseifner's reduce-scatter + all-gather took 289 µs and 1.6 ms,
  // and the same 2–5 µs for small tensors (docs/distributed.md). A value the user
  // set (environment or MCA file read by mpirun's -x / --mca) wins.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", /*overwrite=*/0);
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  // errors come back as return codes (a tape::Error) instead of killing the job silently
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  TAPE_CHECK(provided >= MPI_THREAD_SERIALIZED, "dist: this MPI gives thread level ", provided,
             ", tape needs MPI_THREAD_SERIALIZED");
  return {rank, size};
}

void stop() {
  std::lock_guard lock(mpi_mutex);
  for (SharedWindow* w : live_windows) w->free_window();
  live_windows.clear();
  check(MPI_Finalize(), "MPI_Finalize");
}

std::string name() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, size_t(len));
  if (auto comma = s.find(','); comma != std::string::npos) s.resize(comma);  // "Open MPI v4.1.4"
  return s;
}

RequestPtr iallreduce(void* data, int64_t count, Dtype dtype, ReduceOp op) {
  auto r = std::make_shared<Request>();
  std::lock_guard lock(mpi_mutex);
  check(MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(count), mpi_type(dtype), mpi_op(op), MPI_COMM_WORLD, &r->req),
        "MPI_Iallreduce");
  return r;
}

RequestPtr ibroadcast(void* data, int64_t count, Dtype dtype, int root) {
  auto r = std::make_shared<Request>();
  std::lock_guard lock(mpi_mutex);
  check(MPI_Ibcast(data, mpi_count(count), mpi_type(dtype), root, MPI_COMM_WORLD, &r->req), "MPI_Ibcast");
  return r;
}

RequestPtr iallgather(const void* in, void* out, int64_t count, Dtype dtype) {
  auto r = std::make_shared<Request>();
  std::lock_guard lock(mpi_mutex);
  const int n = mpi_count(count);
  check(MPI_Iallgather(in, n, mpi_type(dtype), out, n, mpi_type(dtype), MPI_COMM_WORLD, &r->req), "MPI_Iallgather");
  return r;
}

RequestPtr ibarrier() {
  auto r = std::make_shared<Request>();
  std::lock_guard lock(mpi_mutex);
  check(MPI_Ibarrier(MPI_COMM_WORLD, &r->req), "MPI_Ibarrier");
  return r;
}

bool test(Request& r) {
  if (r.done) return true;
  std::lock_guard lock(mpi_mutex);
  int flag = 0;
  check(MPI_Test(&r.req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
  r.done = flag != 0;
  return r.done;
}

std::shared_ptr<SharedWindow> shared_window(int64_t bytes) {
  std::lock_guard lock(mpi_mutex);
  // the ranks that share this node: all of them, or no window
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  int node_size = 0, world = 0, local = 0, all_local = 0;
  MPI_Comm_size(node, &node_size);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_free(&node);
  const char* off = std::getenv("TAPE_DIST_SHM");  // "0": MPI collectives only (comparisons, a way out)
  local = node_size == world && !(off && std::string(off) == "0");
  check(MPI_Allreduce(&local, &all_local, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  if (!all_local) return nullptr;
  auto w = std::make_shared<SharedWindow>();
  void* mine = nullptr;
  check(MPI_Win_allocate_shared(MPI_Aint(bytes), 1, MPI_INFO_NULL, MPI_COMM_WORLD, &mine, &w->win),
        "MPI_Win_allocate_shared");
  w->base.resize(size_t(world));
  for (int k = 0; k < world; ++k) {
    MPI_Aint size = 0;
    int unit = 0;
    check(MPI_Win_shared_query(w->win, k, &size, &unit, &w->base[size_t(k)]), "MPI_Win_shared_query");
  }
  check(MPI_Win_lock_all(MPI_MODE_NOCHECK, w->win), "MPI_Win_lock_all");  // passive target, for MPI_Win_sync
  live_windows.push_back(w.get());
  return w;
}

void* segment(SharedWindow& w, int k) { return w.base[size_t(k)]; }

void sync(SharedWindow& w) {
  std::lock_guard lock(mpi_mutex);
  check(MPI_Win_sync(w.win), "MPI_Win_sync");
}

void abort_job(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);  // no lock: another thread may be stuck inside MPI
  std::_Exit(code);
}

}  // namespace tape::dist::detail
