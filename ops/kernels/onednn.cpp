// onednn.cpp: the process-wide engine and stream, and the per-thread primitive cache. See Note
// [Primitive cache].
#include "ops/kernels/onednn.h"

#include <memory>
#include <unordered_map>

#include "framework/error.h"

namespace weft::onednn {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

size_t PrimitiveKey::hash() const {
  size_t h = 1469598103934665603ull;
  for (int64_t v : fields_) h = (h ^ static_cast<size_t>(v)) * 1099511628211ull;
  return h;
}

BoundPrimitive::BoundPrimitive(PrimitiveSpec spec) : primitive_(std::move(spec.primitive)) {
  memories_.reserve(spec.args.size());
  exec_args_.reserve(spec.args.size());
  for (auto& [arg, desc] : spec.args) {
    memories_.emplace_back(desc, engine(), static_cast<void*>(DNNL_MEMORY_NONE));
    exec_args_.push_back({arg, memories_.back().get()});
  }
}

void BoundPrimitive::run(std::initializer_list<void*> buffers) {
  WEFT_INTERNAL_ASSERT(buffers.size() == memories_.size(), "oneDNN call with ", buffers.size(),
                       " buffers for a primitive of ", memories_.size(), " arguments");
  size_t i = 0;
  for (void* buffer : buffers) memories_[i++].set_data_handle(buffer);
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_.get(), stream().get(),
                                                 static_cast<int>(exec_args_.size()), exec_args_.data()),
                          "could not execute a primitive");
  stream().wait();
}

namespace {

struct KeyHash {
  size_t operator()(const PrimitiveKey& k) const { return k.hash(); }
};

struct Cache {
  // unique_ptr: entries hand out stable references while the map rehashes.
  std::unordered_map<PrimitiveKey, std::unique_ptr<BoundPrimitive>, KeyHash> map;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

// The calling thread's cache, through an initial-exec pointer: a hit costs no __tls_get_addr call
// and no guard check of a thread_local with a destructor.
[[gnu::tls_model("initial-exec")]] thread_local Cache* tls_cache = nullptr;

[[gnu::noinline]] Cache& make_thread_cache() {
  static thread_local Cache owner;
  tls_cache = &owner;
  return owner;
}

Cache& cache() { return tls_cache ? *tls_cache : make_thread_cache(); }

}  // namespace

BoundPrimitive* find_primitive(const PrimitiveKey& key) {
  Cache& c = cache();
  auto it = c.map.find(key);
  if (it == c.map.end()) return nullptr;
  ++c.hits;
  return it->second.get();
}

BoundPrimitive& insert_primitive(const PrimitiveKey& key, PrimitiveSpec spec) {
  Cache& c = cache();
  ++c.misses;
  auto& slot = c.map[key];
  slot = std::make_unique<BoundPrimitive>(std::move(spec));
  return *slot;
}

CacheStats cache_stats() {
  Cache& c = cache();
  return {c.hits, c.misses, c.map.size()};
}

void clear_cache() {
  Cache& c = cache();
  c.map.clear();
  c.hits = 0;
  c.misses = 0;
}

}  // namespace weft::onednn
