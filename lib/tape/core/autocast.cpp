#include "tape/core/autocast.hpp"

#include <cstdio>
#include <mutex>

#include "tape/core/error.hpp"

namespace tape {

namespace {
thread_local bool g_autocast = false;
}  // namespace

// bf16_supported() and cpu_isa_name() ask oneDNN: they are in backend/dnnl.cpp.

// Note: without bf16 kernels oneDNN would still run bf16 primitives, on
// reference or emulated code several times slower than f32; the guard turns
// autocast off instead, and says so once.
AutocastGuard::AutocastGuard(Dtype dtype) : prev_(g_autocast) {
  TAPE_CHECK(dtype == Dtype::BFloat16, "AutocastGuard: only BFloat16 autocast is supported, got ", dtype_name(dtype));
  if (!bf16_supported()) {
    static std::once_flag once;
    std::call_once(once, [] {
      std::fprintf(stderr,
                   "tape: bf16 autocast: this CPU (ISA %s) has no bf16 kernels; matmul/linear/conv stay float32\n",
                   cpu_isa_name().c_str());
    });
    return;
  }
  g_autocast = true;
}
AutocastGuard::~AutocastGuard() { g_autocast = prev_; }

bool autocast_enabled() { return g_autocast; }
Dtype autocast_dtype() { return Dtype::BFloat16; }

}  // namespace tape
