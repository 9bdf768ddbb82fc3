// onednn.h: the process's oneDNN engine and stream, and the primitive cache every oneDNN path uses.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "framework/error.h"
#include "kernels/threads.h"

namespace weft::onednn {

// One CPU engine and one stream for the whole process, created on first use.
dnnl::engine& engine();
dnnl::stream& stream();

// Everything that defines a primitive, flattened to integers: op kind, dims, strides, dtypes,
// attributes. Two problems with equal keys can share one primitive. Built on every call, so it is
// a fixed array on the stack (no key has more than a few dozen fields); it is hashed only when the
// cache's most recent entry is not the one asked for (Note [Primitive cache]).
class PrimitiveKey {
 public:
  static constexpr size_t kMaxFields = 32;
  // The thread count is part of every key: oneDNN partitions a primitive's work for the number of
  // threads it was created under, and runs it on that many whatever the setting at the call, so
  // one made for 1 thread ran single-threaded after set_num_threads(2) (and one made for 2
  // ignored a later set_num_threads(1)). A caller that creates under another count passes it.
  explicit PrimitiveKey(int64_t op_kind, int threads = get_num_threads()) { add(op_kind).add(threads); }
  int threads() const { return static_cast<int>(fields_[1]); }
  PrimitiveKey& add(int64_t v) {
    WEFT_INTERNAL_ASSERT(size_ < kMaxFields, "PrimitiveKey: more than ", kMaxFields, " fields");
    fields_[size_++] = v;
    return *this;
  }
  PrimitiveKey& add(std::initializer_list<int64_t> values) {
    for (int64_t v : values) add(v);
    return *this;
  }
  bool operator==(const PrimitiveKey& other) const {
    return size_ == other.size_ && std::equal(fields_, fields_ + size_, other.fields_);
  }
  // FNV-1a over the fields, mixed so that a table's low index bits depend on every field.
  size_t hash() const {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < size_; ++i) h = (h ^ static_cast<uint64_t>(fields_[i])) * 0x100000001B3ull;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
  }

 private:
  int64_t fields_[kMaxFields];
  size_t size_ = 0;
};

// Op kinds for keys; each oneDNN path has its own.
enum OpKind : int64_t {
  kMatmul = 1, kMatmulBias = 2, kLayerNorm = 103,  // softmax and log_softmax run on weft's own kernels
  kConvForward = 201, kConvBackwardData = 202, kConvBackwardWeights = 203,
};

// What a cache miss builds: the primitive and the descriptor of each argument it takes.
struct PrimitiveSpec {
  dnnl::primitive primitive;
  std::vector<std::pair<int, dnnl::memory::desc>> args;  // (DNNL_ARG_*, descriptor)
};

// A cached primitive with one memory object per argument, made once. A call points the memory
// objects at its own buffers and executes: no descriptor, memory object or argument map is built
// per call. See Note [Primitive cache].
class BoundPrimitive {
 public:
  static constexpr size_t kMaxArgs = 8;
  // `threads`: the count the primitive was created for, and runs on (see Note [Serial primitives]).
  BoundPrimitive(PrimitiveSpec spec, int threads);
  // exec_args_ point at memories_ and primitive_ at owner_: the object stays where it was made.
  BoundPrimitive(const BoundPrimitive&) = delete;
  BoundPrimitive& operator=(const BoundPrimitive&) = delete;
  // Executes on `buffers`, one per argument in the order of the spec's args, and waits.
  void run(std::initializer_list<void*> buffers);

 private:
  // What a call reads sits in the object itself, not behind three vectors: after a primitive's
  // arithmetic has gone through L1, every separate block is one more miss on the next call.
  dnnl_primitive_t primitive_;  // owner_'s handle, read without get()'s emptiness check
  dnnl_stream_t stream_;  // the process's stream, held here so a call skips stream()'s static guard
  int threads_;
  int num_args_;
  void* handles_[kMaxArgs];  // what each memory object points at now
  dnnl_exec_arg_t exec_args_[kMaxArgs];
  dnnl::primitive owner_;
  dnnl::memory memories_[kMaxArgs];
};

// The calling thread's cached primitive for `key`; `make()` (returning a PrimitiveSpec) builds it
// on the first request (a miss), later requests are hits.
BoundPrimitive* find_primitive(const PrimitiveKey& key);
BoundPrimitive& insert_primitive(const PrimitiveKey& key, PrimitiveSpec spec);
template <class Make>
BoundPrimitive& get_primitive(const PrimitiveKey& key, Make&& make) {
  if (BoundPrimitive* hit = find_primitive(key)) return *hit;
  ScopedNumThreads create_for(key.threads());  // oneDNN reads the count when it creates
  return insert_primitive(key, make());
}

// The thread count for a problem of `work` units that a second thread only slows down below
// `serial_below` (each caller measured its own): 1 there, the setting otherwise.
inline int threads_for(int64_t work, int64_t serial_below) { return work < serial_below ? 1 : get_num_threads(); }

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  size_t size = 0;  // primitives held
};
// The calling thread's cache.
CacheStats cache_stats();
// Drops the calling thread's cached primitives and zeroes its counters (tests).
void clear_cache();

// Note [Serial primitives]
// Forking and joining an OpenMP team costs a few microseconds here; below some size a second thread
// makes a oneDNN call slower, not faster (a 64^3 matmul 2.4x, a [64, 64] softmax 2.6x). Such
// problems get a primitive keyed and created for one thread, and it also runs with the thread
// count set to one: matmul keeps the count it was created with, but softmax and layer norm ask
// OpenMP again when they run. Every thread setting then shares that one primitive. (A single
// matmul skips primitives altogether: Note [Single products through sgemm] in kernels/matmul.cpp.)
//
// Note [Primitive cache]
// Creating a oneDNN primitive JIT-compiles code and costs far more than running a small one, so
// primitives are made once per distinct problem. Memory descriptors carry exact strides (no
// format_tag::any), so a primitive runs directly on weft's buffers without reorders, and the key
// is just the geometry plus the op kind: after a training step's first iteration every request
// is a hit.
// A hit must also be cheap, because a 64x64 matmul runs in a few microseconds: making three
// memory objects and an argument map per call cost about 40% on top of it. So each entry keeps
// its memory objects and its argument array, and a call only swaps the data pointers that changed
// since its previous call (set_data_handle). A lookup first compares the key with the entry the
// previous lookup found (a loop calls one op on one shape, a model repeats a layer's shapes) and
// hashes only when that differs: on a 64^3 matmul the hash, the probe and their cache misses
// were measurable against the raw primitive call. Those memory objects are mutable state, so the cache
// is per thread: two threads never share one. A primitive is compiled once per thread that asks
// for it (oneDNN's own primitive cache makes the second thread's creation cheap).

}  // namespace weft::onednn
