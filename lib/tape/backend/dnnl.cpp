#include "tape/backend/dnnl.hpp"

#include <immintrin.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "tape/backend/parallel.hpp"
#include "tape/core/autocast.hpp"

namespace tape::backend {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dnnl::primitive_attr attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args) {
  sync_num_threads();
  const dnnl_memory_desc_t* sd = dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  Tensor scratchpad;  // lives until the primitive is done
  if (sd && dnnl_memory_desc_get_size(sd) > 0) {
    const dnnl::memory::desc d(*sd);
    scratchpad = buffer_for(d);
    args.emplace(DNNL_ARG_SCRATCHPAD, mem(d, scratchpad));
  }
  dnnl::stream& s = stream();
  p.execute(s, args);
  s.wait();
}

namespace {
// Note: f32 → bf16. oneDNN's reorder (jit:uni) converts ~1 element per cycle on
// one thread and runs each reorder through a primitive launch and its own
// scratchpad. For the contiguous tensors autocast converts (the batch, weights,
// the incoming gradient), two AVX512-BF16 instructions per 32 floats
// (vcvtne2ps2bf16 — the instruction oneDNN's reorder uses too, so the bits are
// the same: round to nearest even, NaN quieted, denormals flushed to a signed
// zero) and the caller's thread team are ~2–3× faster. Only called where oneDNN
// found avx512_core_bf16 (autocast is off otherwise), so the CPU has the
// instruction.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void f32_to_bf16_avx512(
    const float* __restrict in, uint16_t* __restrict out, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
    _mm512_storeu_si512(out + i, __m512i(r));
  }
  if (i < n) {  // 1..31 left: masked loads and store
    const int64_t r = n - i;
    const __mmask16 lo = __mmask16(r >= 16 ? 0xffff : (1u << r) - 1), hi = __mmask16(r > 16 ? (1u << (r - 16)) - 1 : 0);
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, in + i + 16), _mm512_maskz_loadu_ps(lo, in + i));
    _mm512_mask_storeu_epi16(out + i, __mmask32((uint64_t(1) << r) - 1), __m512i(v));
  }
}
}  // namespace

Tensor to_bf16(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), Dtype::BFloat16);
  const int64_t n = t.numel();
  if (n == 0) return out;
  if (t.is_contiguous() && bf16_supported()) {
    const float* in = static_cast<const float*>(t.impl()->storage->data()) + t.impl()->offset;
    auto* o = static_cast<uint16_t*>(out.impl()->storage->data()) + out.impl()->offset;
    parallel_ranges(n, [&](int64_t b, int64_t e) {
      // whole 64-byte lines of the output per thread (one line, one writer)
      b &= ~int64_t(31);
      if (e < n) e &= ~int64_t(31);
      f32_to_bf16_avx512(in + b, o + b, e - b);
    });
    return out;
  }
  Key key{int64_t(OpId::Reorder), int64_t(Dtype::BFloat16), t.dim()};
  key.insert(key.end(), t.shape().begin(), t.shape().end());
  key.insert(key.end(), t.strides().begin(), t.strides().end());
  const auto r = cached<dnnl::reorder>(key, [&] {
    // memory descriptors → primitive descriptor → primitive
    return dnnl::reorder(dnnl::reorder::primitive_desc(engine(), md(t), engine(), md(out), attr()));
  });
  execute(*r, {{DNNL_ARG_FROM, mem(md(t), t)}, {DNNL_ARG_TO, mem(md(out), out)}});
  return out;
}

namespace {
constexpr size_t kCapacity = 512;

/// A cache key: the op's key and the thread count the entry was built for.
struct Entry {
  Key key;
  int threads;
};
/// The same, borrowed, to look up without copying the key.
struct EntryRef {
  const Key& key;
  int threads;
};

struct EntryHash {
  using is_transparent = void;
  size_t operator()(const EntryRef& e) const {
    uint64_t h = 1469598103934665603ull ^ uint64_t(e.threads);
    for (int64_t v : e.key) h = (h ^ uint64_t(v)) * 1099511628211ull;
    return size_t(h);
  }
  size_t operator()(const Entry& e) const { return (*this)(EntryRef{e.key, e.threads}); }
};
struct EntryEq {
  using is_transparent = void;
  static EntryRef ref(const Entry& e) { return {e.key, e.threads}; }
  static EntryRef ref(const EntryRef& e) { return e; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return ref(a).threads == ref(b).threads && ref(a).key == ref(b).key;
  }
};

struct Lru {
  std::mutex mu;
  std::list<std::pair<Entry, std::shared_ptr<void>>> items;  // front = most recent
  std::unordered_map<Entry, decltype(items)::iterator, EntryHash, EntryEq> index;
};
Lru& lru() {
  static Lru l;
  return l;
}
}  // namespace

std::shared_ptr<void> cache_lookup(const Key& key, const std::function<std::shared_ptr<void>()>& make) {
  sync_num_threads();
  const EntryRef ref{key, omp_get_max_threads()};
  Lru& c = lru();
  {
    std::lock_guard lock(c.mu);
    auto it = c.index.find(ref);
    if (it != c.index.end()) {
      c.items.splice(c.items.begin(), c.items, it->second);
      return it->second->second;
    }
  }
  std::shared_ptr<void> v = make();  // built outside the lock: JIT can take a while
  std::lock_guard lock(c.mu);
  auto it = c.index.find(ref);
  if (it != c.index.end()) return it->second->second;
  c.items.emplace_front(Entry{key, ref.threads}, v);
  c.index.emplace(c.items.front().first, c.items.begin());
  if (c.items.size() > kCapacity) {
    c.index.erase(c.items.back().first);
    c.items.pop_back();
  }
  return v;
}

size_t cache_size() {
  std::lock_guard lock(lru().mu);
  return lru().items.size();
}
size_t cache_capacity() { return kCapacity; }

}  // namespace tape::backend

namespace tape {

namespace {
dnnl::cpu_isa effective_isa() {
  static const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();  // oneDNN reads ONEDNN_MAX_CPU_ISA once too
  return isa;
}
}  // namespace

bool bf16_supported() {
  const auto isa = effective_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

namespace backend {
bool amx() { return effective_isa() == dnnl::cpu_isa::avx512_core_amx; }
}  // namespace backend

std::string cpu_isa_name() {
  using Isa = dnnl::cpu_isa;
  switch (effective_isa()) {
    case Isa::all: return "all";
    case Isa::sse41: return "sse41";
    case Isa::avx: return "avx";
    case Isa::avx2: return "avx2";
    case Isa::avx2_vnni: return "avx2_vnni (AVX2 with VNNI)";
    case Isa::avx512_mic: return "avx512_mic";
    case Isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case Isa::avx512_core: return "avx512_core (AVX-512)";
    case Isa::avx512_core_vnni: return "avx512_core_vnni (AVX-512 with VNNI)";
    case Isa::avx512_core_bf16: return "avx512_core_bf16 (AVX-512 with bf16)";
    case Isa::avx512_core_amx: return "avx512_core_amx (AMX)";
  }
  return "unknown";
}

size_t primitive_cache_size() { return backend::cache_size(); }
size_t primitive_cache_capacity() { return backend::cache_capacity(); }
}  // namespace tape
