// onednn.cpp: the process-wide engine and stream, and the per-thread primitive cache. See Note
// [Primitive cache].
#include "kernels/onednn.h"

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
    : stream_(stream().get()), threads_(threads), num_args_(static_cast<int>(spec.args.size())) {
  WEFT_INTERNAL_ASSERT(spec.args.size() <= kMaxArgs, "BoundPrimitive: ", spec.args.size(), " arguments (at most ",
                       kMaxArgs, ")");
  owner_ = std::move(spec.primitive);
  primitive_ = owner_.get();
  for (size_t i = 0; i < spec.args.size(); ++i) {
    memories_[i] = dnnl::memory(spec.args[i].second, engine(), static_cast<void*>(DNNL_MEMORY_NONE));
    exec_args_[i] = {spec.args[i].first, memories_[i].get()};
    handles_[i] = nullptr;
  }
}

void BoundPrimitive::run(std::initializer_list<void*> buffers) {
  WEFT_INTERNAL_ASSERT(buffers.size() == static_cast<size_t>(num_args_), "oneDNN call with ", buffers.size(),
                       " buffers for a primitive of ", num_args_, " arguments");
  // Only a moved buffer needs a call into oneDNN: a weight is the same buffer every step, and the
  // allocator's LIFO lists often hand an output the block its predecessor had.
  void** handle = handles_;
  for (void* buffer : buffers) {
    if (*handle != buffer) [[unlikely]] {
      memories_[handle - handles_].set_data_handle(buffer);
      *handle = buffer;
    }
    ++handle;
  }
  // A serial primitive runs with the count at one (see Note [Serial primitives]); otherwise the
  // key made sure the setting is the primitive's own.
  std::optional<ScopedNumThreads> serial;
  if (threads_ == 1 && get_num_threads() != 1) serial.emplace(1);
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_, stream_, num_args_, exec_args_),
                          "could not execute a primitive");
  dnnl::error::wrap_c_api(dnnl_stream_wait(stream_), "could not wait on the stream");
}

namespace {

// An open-addressing table (linear probing, power-of-two size) rather than std::unordered_map: a
// hit is one masked index and, usually, one slot, where the map paid a modulo by a prime and a
// walk through list nodes. Slots keep the full hash, so a probe compares keys only when the hashes
// agree. Entries live behind unique_ptr: callers hold references across growth, and an entry's key
// and primitive share one block.
struct Cache {
  struct Entry {
    PrimitiveKey key;
    BoundPrimitive primitive;
  };
  struct Slot {
    size_t hash = 0;
    Entry* entry = nullptr;  // null: empty
  };
  std::vector<std::unique_ptr<Entry>> entries;
  std::vector<Slot> slots = std::vector<Slot>(64);
  Entry* last = nullptr;  // what the previous lookup found: compared before hashing
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
  Entry& insert(const PrimitiveKey& key, size_t hash, PrimitiveSpec spec) {
    if (2 * (entries.size() + 1) > slots.size()) {  // keep at most half full: probes stay short
      std::vector<Slot> old = std::exchange(slots, std::vector<Slot>(slots.size() * 2));
      for (const Slot& slot : old)
        if (slot.entry != nullptr) place(slot);
    }
    // Built in place (no move): see BoundPrimitive.
    entries.push_back(std::unique_ptr<Entry>(new Entry{key, BoundPrimitive(std::move(spec), key.threads())}));
    place({hash, entries.back().get()});
    return *entries.back();
  }
  void clear() {
    last = nullptr;
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
  Cache::Entry* entry = c.last != nullptr && c.last->key == key ? c.last : c.find(key, key.hash());
  if (entry == nullptr) return nullptr;
  c.last = entry;
  ++c.hits;
  return &entry->primitive;
}

BoundPrimitive& insert_primitive(const PrimitiveKey& key, PrimitiveSpec spec) {
  Cache& c = cache();
  ++c.misses;
  const size_t hash = key.hash();
  // A caller that skipped find_primitive keeps the first primitive: others may hold references to it.
  Cache::Entry* entry = c.find(key, hash);
  if (entry == nullptr) entry = &c.insert(key, hash, std::move(spec));
  c.last = entry;
  return entry->primitive;
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
