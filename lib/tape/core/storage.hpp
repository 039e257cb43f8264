#pragma once
/// \file Storage: a 64-byte aligned buffer from the caching allocator, plus the
/// version counter shared by every view of it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace tape {

/// Caching allocator statistics (see docs/architecture.md, "Memory").
struct AllocatorStats {
  size_t bytes_in_use = 0;     ///< handed out to live storages
  size_t peak_bytes_in_use = 0;  ///< the most ever handed out at once
  size_t bytes_cached = 0;     ///< freed, kept for reuse
  size_t system_allocs = 0;    ///< calls that reached the system allocator
  size_t cache_hits = 0;
};
AllocatorStats allocator_stats();
/// Returns cached memory to the system: the small free lists and every large
/// segment that has no live block.
void empty_cache();

class Storage {
 public:
  explicit Storage(size_t nbytes);   ///< uninitialised memory
  /// Caller-owned memory (from_blob): never freed or cached by the storage.
  struct External {};
  Storage(void* data, size_t nbytes, External) : data_(data), nbytes_(nbytes), external_(true) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;
  bool external_ = false;
  std::atomic<uint32_t> version_{0};  // atomic: views in several threads may bump it
};

}  // namespace tape
