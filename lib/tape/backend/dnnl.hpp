#pragma once
// Internal (not installed): the only header that includes oneDNN.
// Each op builds its primitives as a short narrative — memory descriptors →
// primitive descriptor → primitive → execute — and keeps them in the bounded
// cache below, keyed by (op, shapes, attributes).
#include <dnnl.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::backend {

dnnl::engine& engine();
/// This thread's stream (one per thread: a dnnl::stream must not be shared).
dnnl::stream& stream();

using Key = std::vector<int64_t>;

/// A bounded LRU of anything built once per key (primitives and their pds).
/// Entries are also keyed by the thread count they were built for (oneDNN plans
/// a primitive's threads when it is created).
/// Note: oneDNN's own primitive cache still costs ~1.7 µs per re-creation on a
/// hit; keeping the primitive object makes a small op's launch ~0.3 µs.
std::shared_ptr<void> cache_lookup(const Key& key, const std::function<std::shared_ptr<void>()>& make);

/// The cached entry: a shared_ptr, so that an eviction by another thread
/// cannot free it while the caller still uses it.
template <class T, class Make>
std::shared_ptr<const T> cached(const Key& key, Make&& make) {
  auto p = cache_lookup(key, [&] { return std::shared_ptr<void>(std::make_shared<T>(make())); });
  return std::static_pointer_cast<const T>(p);
}

// Note: thread safety (see "Threads" in docs/architecture.md). Every primitive
// is built with attr() — a user-managed scratchpad — and run through execute(),
// which hands it a scratchpad of its own from the caching allocator. With
// oneDNN's default (library) scratchpad, a primitive's temporary buffers (and
// the barrier counters of its reductions) are shared by every thread running
// that primitive object, and two threads training same-shaped models run the
// very same cached primitives: wrong gradients, or a reduction barrier that
// never opens.
/// Primitive attributes with a user-managed scratchpad.
dnnl::primitive_attr attr();
/// Runs `p` on this thread's stream with its own scratchpad and waits for it.
void execute(const dnnl::primitive& p, std::unordered_map<int, dnnl::memory> args);
/// Entries currently cached, and the bound.
size_t cache_size();
size_t cache_capacity();

/// True when oneDNN's effective ISA has AMX tiles (avx512_core_amx).
bool amx();

/// Distinct op ids for keys.
enum class OpId : int64_t {
  Matmul = 1,
  ConvFwd,
  ConvBwdData,
  ConvBwdWeights,
  PoolFwd,
  PoolBwd,
  Reorder,
  Eltwise,
  ConvBlockFwd,      ///< conv2d_relu_max_pool2d: conv (+ ReLU) and pooling forward
  ConvBlockBwd,      ///< its pooling backward and conv backward-weights
  ConvBlockBwdData,  ///< its conv backward-data
};

/// memory::dims from a Shape.
inline dnnl::memory::dims dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

/// oneDNN's data type for a tensor of dtype d (Float32 or BFloat16).
inline dnnl::memory::data_type data_type(Dtype d) {
  return d == Dtype::BFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

/// A plain memory descriptor (f32 unless told) with explicit strides (views need no copy).
inline dnnl::memory::desc md(const Shape& shape, const Shape& strides,
                             dnnl::memory::data_type dt = dnnl::memory::data_type::f32) {
  return dnnl::memory::desc(dims(shape), dt, dims(strides));
}
inline dnnl::memory::desc md(const Tensor& t) { return md(t.shape(), t.strides(), data_type(t.dtype())); }
/// The descriptor of a contiguous (row-major) f32 tensor of this shape.
inline dnnl::memory::desc plain_md(const Shape& shape) { return md(shape, contiguous_strides(shape)); }

/// A buffer from the caching allocator big enough for a memory of any layout
/// or type (blocked scratch, pooling workspace).
inline Tensor buffer_for(const dnnl::memory::desc& d) {
  return Tensor::empty({int64_t((d.get_size() + sizeof(float) - 1) / sizeof(float))});
}

/// A oneDNN memory over a tensor's buffer (no copy).
inline dnnl::memory mem(const dnnl::memory::desc& d, const Tensor& t) {
  auto* base = static_cast<char*>(t.impl()->storage->data());
  return dnnl::memory(d, engine(), base + t.impl()->offset * int64_t(dtype_size(t.dtype())));
}

/// A contiguous BFloat16 copy of a Float32 tensor of any strides (a cached oneDNN
/// reorder, round to nearest even): the operands of autocast's bf16 kernels.
Tensor to_bf16(const Tensor& t);

}  // namespace tape::backend
