// tape::dist's transport when libtape is built without MPI (meson -Ddistributed=disabled,
// or Open MPI not found): dist::init makes a world of one (and refuses to run under
// mpirun with several processes), so nothing here is reached but available() and name().
#include <cstdlib>

#include "tape/core/error.hpp"
#include "tape/dist/comm.hpp"

namespace tape::dist::detail {

struct Request {};

namespace {
[[noreturn]] void unreachable(const char* what) {
  throw Error(str_cat("dist: ", what, " needs MPI, and this libtape was built without it "
                      "(install libopenmpi-dev and rebuild; docs/distributed.md)"));
}
}  // namespace

bool available() { return false; }
std::pair<int, int> start(int*, char***) { unreachable("init"); }
void stop() {}
std::string name() { return "none (libtape was built without MPI)"; }
RequestPtr iallreduce(void*, int64_t, Dtype, ReduceOp) { unreachable("all_reduce"); }
RequestPtr ibroadcast(void*, int64_t, Dtype, int) { unreachable("broadcast"); }
RequestPtr iallgather(const void*, void*, int64_t, Dtype) { unreachable("all_gather"); }
RequestPtr ibarrier() { unreachable("barrier"); }
bool test(Request&) { return true; }
void abort_job(int code) { std::_Exit(code); }
struct SharedWindow {};
std::shared_ptr<SharedWindow> shared_window(int64_t) { return nullptr; }
void* segment(SharedWindow&, int) { unreachable("a shared window"); }
void sync(SharedWindow&) {}

}  // namespace tape::dist::detail
