// onednn.cpp: the process-wide engine and stream, and the per-thread primitive cache. See Note
// [Primitive cache].
#include "ops/kernels/onednn.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

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

BoundPrimitive::BoundPrimitive(PrimitiveSpec spec, int threads)
    : primitive_(std::move(spec.primitive)), stream_(stream().get()), threads_(threads) {
  memories_.reserve(spec.args.size());
  exec_args_.reserve(spec.args.size());
  for (auto& [arg, desc] : spec.args) {
    memories_.emplace_back(desc, engine(), static_cast<void*>(DNNL_MEMORY_NONE));
    exec_args_.push_back({arg, memories_.back().get()});
    handles_.push_back(nullptr);
  }
}

void BoundPrimitive::run(std::initializer_list<void*> buffers) {
  WEFT_INTERNAL_ASSERT(buffers.size() == memories_.size(), "oneDNN call with ", buffers.size(),
                       " buffers for a primitive of ", memories_.size(), " arguments");
  // Only a moved buffer needs a call into oneDNN: a weight is the same buffer every step, and the
  // allocator's LIFO lists often hand an output the block its predecessor had.
  size_t i = 0;
  for (void* buffer : buffers) {
    if (handles_[i] != buffer) {
      memories_[i].set_data_handle(buffer);
      handles_[i] = buffer;
    }
    ++i;
  }
  // A serial primitive runs with the count at one (see Note [Serial primitives]); otherwise the
  // key made sure the setting is the primitive's own.
  std::optional<ScopedNumThreads> serial;
  if (threads_ == 1 && get_num_threads() != 1) serial.emplace(1);
  dnnl::error::wrap_c_api(
      dnnl_primitive_execute(primitive_.get(), stream_, static_cast<int>(exec_args_.size()), exec_args_.data()),
      "could not execute a primitive");
  dnnl::error::wrap_c_api(dnnl_stream_wait(stream_), "could not wait on the stream");
}

namespace {

// An open-addressing table (linear probing, power-of-two size) rather than std::unordered_map: a
// hit is one masked index and, usually, one slot, where the map paid a modulo by a prime and a
// walk through list nodes. Slots keep the full hash, so a probe compares keys only when the hashes
// agree. Entries live behind unique_ptr: callers hold references across growth.
struct Cache {
  struct Entry {
    PrimitiveKey key;
    std::unique_ptr<BoundPrimitive> primitive;
  };
  struct Slot {
    size_t hash = 0;
    Entry* entry = nullptr;  // null: empty
  };
  std::vector<std::unique_ptr<Entry>> entries;
  std::vector<Slot> slots = std::vector<Slot>(64);
  uint64_t hits = 0;
  uint64_t misses = 0;

  Entry* find(const PrimitiveKey& key, size_t hash) const {
    const size_t mask = slots.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots[i];
      if (slot.entry == nullptr) return nullptr;
      if (slot.hash == hash && slot.entry->key == key) return slot.entry;
    }
  }
  void place(Slot slot) {
    const size_t mask = slots.size() - 1;
    size_t i = slot.hash & mask;
    while (slots[i].entry != nullptr) i = (i + 1) & mask;
    slots[i] = slot;
  }
  Entry& insert(const PrimitiveKey& key, size_t hash, std::unique_ptr<BoundPrimitive> primitive) {
    if (2 * (entries.size() + 1) > slots.size()) {  // keep at most half full: probes stay short
      std::vector<Slot> old = std::exchange(slots, std::vector<Slot>(slots.size() * 2));
      for (const Slot& slot : old)
        if (slot.entry != nullptr) place(slot);
    }
    entries.push_back(std::make_unique<Entry>(Entry{key, std::move(primitive)}));
    place({hash, entries.back().get()});
    return *entries.back();
  }
  void clear() {
    entries.clear();
    slots.assign(64, Slot{});
  }
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
  Cache::Entry* entry = c.find(key, key.hash());
  if (entry == nullptr) return nullptr;
  ++c.hits;
  return entry->primitive.get();
}

BoundPrimitive& insert_primitive(const PrimitiveKey& key, PrimitiveSpec spec) {
  Cache& c = cache();
  ++c.misses;
  const size_t hash = key.hash();
  // A caller that skipped find_primitive keeps the first primitive: others may hold references to it.
  if (Cache::Entry* existing = c.find(key, hash)) return *existing->primitive;
  return *c.insert(key, hash, std::make_unique<BoundPrimitive>(std::move(spec), key.threads())).primitive;
}

CacheStats cache_stats() {
  Cache& c = cache();
  return {c.hits, c.misses, c.entries.size()};
}

void clear_cache() {
  Cache& c = cache();
  c.clear();
  c.hits = 0;
  c.misses = 0;
}

}  // namespace weft::onednn
