#pragma once
// Internal (not installed): the only header that includes oneDNN.
// Each op builds its primitives as a short narrative — memory descriptors →
// primitive descriptor → primitive → execute — and keeps them in the bounded
// cache below, keyed by (op, shapes, attributes).
#include <dnnl.hpp>

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "tape/core/tensor.hpp"

namespace tape::backend {

dnnl::engine& engine();
dnnl::stream& stream();

using Key = std::vector<int64_t>;

/// A bounded LRU of anything built once per key (primitives and their pds).
/// Note: oneDNN's own primitive cache still costs ~1.7 µs per re-creation on a
/// hit; keeping the primitive object makes a small op's launch ~0.3 µs.
std::shared_ptr<void> cache_lookup(const Key& key, const std::function<std::shared_ptr<void>()>& make);

template <class T, class Make>
T& cached(const Key& key, Make&& make) {
  auto p = cache_lookup(key, [&] { return std::shared_ptr<void>(std::make_shared<T>(make())); });
  return *static_cast<T*>(p.get());
}
/// Entries currently cached, and the bound.
size_t cache_size();
size_t cache_capacity();

/// Distinct op ids for keys.
enum class OpId : int64_t { Matmul = 1, ConvFwd, ConvBwdData, ConvBwdWeights, PoolFwd, PoolBwd, Reorder, Eltwise };

/// memory::dims from a Shape.
inline dnnl::memory::dims dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }

/// A plain f32 memory descriptor with explicit strides (views need no copy).
inline dnnl::memory::desc md(const Shape& shape, const Shape& strides) {
  return dnnl::memory::desc(dims(shape), dnnl::memory::data_type::f32, dims(strides));
}
inline dnnl::memory::desc md(const Tensor& t) { return md(t.shape(), t.strides()); }
/// The descriptor of a contiguous (row-major) f32 tensor of this shape.
inline dnnl::memory::desc plain_md(const Shape& shape) { return md(shape, contiguous_strides(shape)); }

/// A buffer from the caching allocator big enough for a memory of any layout
/// or type (blocked scratch, pooling workspace).
inline Tensor buffer_for(const dnnl::memory::desc& d) {
  return Tensor::empty({int64_t((d.get_size() + sizeof(float) - 1) / sizeof(float))});
}

/// A oneDNN memory over a tensor's buffer (no copy).
inline dnnl::memory mem(const dnnl::memory::desc& d, const Tensor& t) {
  return dnnl::memory(d, engine(), static_cast<float*>(t.impl()->storage->data()) + t.impl()->offset);
}

}  // namespace tape::backend
