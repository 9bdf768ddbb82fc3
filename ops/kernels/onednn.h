// onednn.h: the process's oneDNN engine and stream, and the primitive cache every oneDNN path uses.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace weft::onednn {

// One CPU engine and one stream for the whole process, created on first use.
dnnl::engine& engine();
dnnl::stream& stream();

// Everything that defines a primitive, flattened to integers: op kind, dims, strides, dtypes,
// attributes. Two problems with equal keys can share one primitive.
class PrimitiveKey {
 public:
  explicit PrimitiveKey(int64_t op_kind) { fields_.push_back(op_kind); }
  PrimitiveKey& add(int64_t v) { fields_.push_back(v); return *this; }
  PrimitiveKey& add(const dnnl::memory::desc& md);
  bool operator==(const PrimitiveKey& other) const { return fields_ == other.fields_; }
  size_t hash() const;

 private:
  std::vector<int64_t> fields_;
};

// Op kinds for keys; other oneDNN paths add their own values here.
enum OpKind : int64_t { kMatmul = 1, kMatmulBias = 2 };

// The cached primitive for `key`, made by `make` on the first request (a miss), then reused (hits).
// Thread-safe. See Note [Primitive cache].
dnnl::primitive get_primitive(const PrimitiveKey& key, const std::function<dnnl::primitive()>& make);

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t size = 0;  // primitives held
};
CacheStats cache_stats();
// Drops every cached primitive and zeroes the counters (tests).
void clear_cache();

// Note [Primitive cache]
// Creating a oneDNN primitive JIT-compiles code and costs far more than running a small one, so
// primitives are made once per distinct problem. Memory descriptors carry exact strides (no
// format_tag::any), so a primitive runs directly on weft's buffers without reorders, and the key
// is just the descriptors plus the op kind: after a training step's first iteration every
// request is a hit.

}  // namespace weft::onednn
