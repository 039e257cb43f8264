#include "tape/backend/dnnl.hpp"

#include <list>
#include <mutex>
#include <unordered_map>

namespace tape::backend {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

namespace {
constexpr size_t kCapacity = 512;

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ uint64_t(v)) * 1099511628211ull;
    return size_t(h);
  }
};

struct Lru {
  std::mutex mu;
  std::list<std::pair<Key, std::shared_ptr<void>>> items;  // front = most recent
  std::unordered_map<Key, decltype(items)::iterator, KeyHash> index;
};
Lru& lru() {
  static Lru l;
  return l;
}
}  // namespace

std::shared_ptr<void> cache_lookup(const Key& key, const std::function<std::shared_ptr<void>()>& make) {
  Lru& c = lru();
  {
    std::lock_guard lock(c.mu);
    auto it = c.index.find(key);
    if (it != c.index.end()) {
      c.items.splice(c.items.begin(), c.items, it->second);
      return it->second->second;
    }
  }
  std::shared_ptr<void> v = make();  // built outside the lock: JIT can take a while
  std::lock_guard lock(c.mu);
  auto it = c.index.find(key);
  if (it != c.index.end()) return it->second->second;
  c.items.emplace_front(key, v);
  c.index[key] = c.items.begin();
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
size_t primitive_cache_size() { return backend::cache_size(); }
size_t primitive_cache_capacity() { return backend::cache_capacity(); }
}  // namespace tape
