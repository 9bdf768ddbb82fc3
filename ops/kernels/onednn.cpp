// onednn.cpp: the process-wide engine and stream, and the primitive cache. See Note [Primitive cache].
#include "ops/kernels/onednn.h"

#include <mutex>
#include <unordered_map>

namespace weft::onednn {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

PrimitiveKey& PrimitiveKey::add(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  fields_.push_back(d.ndims);
  fields_.push_back(static_cast<int64_t>(d.data_type));
  for (int i = 0; i < d.ndims; ++i) fields_.push_back(d.dims[i]);
  if (d.format_kind == dnnl_blocked) {
    for (int i = 0; i < d.ndims; ++i) fields_.push_back(d.format_desc.blocking.strides[i]);
  } else {
    fields_.push_back(-1 - static_cast<int64_t>(d.format_kind));
  }
  fields_.push_back(d.offset0);
  return *this;
}

size_t PrimitiveKey::hash() const {
  size_t h = 1469598103934665603ull;
  for (int64_t v : fields_) h = (h ^ static_cast<size_t>(v)) * 1099511628211ull;
  return h;
}

namespace {

struct KeyHash {
  size_t operator()(const PrimitiveKey& k) const { return k.hash(); }
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<PrimitiveKey, dnnl::primitive, KeyHash> map;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

dnnl::primitive get_primitive(const PrimitiveKey& key, const std::function<dnnl::primitive()>& make) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.map.find(key);
    if (it != c.map.end()) {
      ++c.hits;
      return it->second;
    }
    ++c.misses;
  }
  // Created outside the lock: JIT compilation is slow and must not serialise other threads.
  dnnl::primitive prim = make();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.map.emplace(key, std::move(prim)).first->second;
}

CacheStats cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.hits, c.misses, c.map.size()};
}

void clear_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.map.clear();
  c.hits = 0;
  c.misses = 0;
}

}  // namespace weft::onednn
