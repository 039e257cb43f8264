#include "tape/core/storage.hpp"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace tape {

// Note: a free list per size class. Sizes round up to a power of two below 1 MiB
// and to a multiple of 64 KiB above, so a training step in steady state finds
// every buffer it needs in the cache and never calls the system allocator.
namespace {
constexpr size_t kAlign = 64;
constexpr int kClasses = 64;

size_t round_size(size_t n) {
  if (n <= 64) return 64;
  if (n <= (size_t(1) << 20)) return std::bit_ceil(n);
  constexpr size_t step = size_t(1) << 16;
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::vector<std::pair<size_t, void*>> big;       // exact-size blocks above 1 MiB
  std::vector<void*> small[kClasses];              // indexed by log2(size)
  AllocatorStats stats;
  ~Cache() { release_all(); }
  void release_all() {
    for (auto& v : small) {
      for (void* p : v) std::free(p);
      v.clear();
    }
    for (auto& [n, p] : big) std::free(p);
    big.clear();
    stats.bytes_cached = 0;
  }
};
Cache& cache() {
  static Cache* c = new Cache;  // leaked on purpose: storages may die after static destruction
  return *c;
}

void* take(size_t cap) {
  Cache& c = cache();
  {
    std::lock_guard lock(c.mu);
    c.stats.bytes_in_use += cap;
    if (cap <= (size_t(1) << 20)) {
      auto& v = c.small[std::countr_zero(cap)];
      if (!v.empty()) {
        void* p = v.back();
        v.pop_back();
        c.stats.bytes_cached -= cap;
        ++c.stats.cache_hits;
        return p;
      }
    } else {
      for (size_t i = 0; i < c.big.size(); ++i)
        if (c.big[i].first == cap) {
          void* p = c.big[i].second;
          c.big[i] = c.big.back();
          c.big.pop_back();
          c.stats.bytes_cached -= cap;
          ++c.stats.cache_hits;
          return p;
        }
    }
    ++c.stats.system_allocs;
  }
  void* p = std::aligned_alloc(kAlign, cap);
  if (!p) throw std::bad_alloc();
  return p;
}

void give(void* p, size_t cap) {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  c.stats.bytes_in_use -= cap;
  c.stats.bytes_cached += cap;
  if (cap <= (size_t(1) << 20)) c.small[std::countr_zero(cap)].push_back(p);
  else c.big.emplace_back(cap, p);
}
}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes), capacity_(round_size(nbytes)) { data_ = take(capacity_); }
Storage::~Storage() { give(data_, capacity_); }

AllocatorStats allocator_stats() {
  std::lock_guard lock(cache().mu);
  return cache().stats;
}

void empty_cache() {
  std::lock_guard lock(cache().mu);
  cache().release_all();
}

}  // namespace tape
