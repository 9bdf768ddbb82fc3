// Tensor metadata, element access and low-level construction.
#include "framework/tensor.h"

#include "framework/autograd_meta.h"
#include "framework/copy.h"

namespace weft {

[[gnu::tls_model("initial-exec")]] constinit thread_local bool detail::InferenceFlag::enabled = false;

TensorImpl::~TensorImpl() = default;
// Metas come from the object pool (autograd_meta(), factories), so they go back to it.
void AutogradMetaDeleter::operator()(AutogradMeta* meta) const {
  meta->~AutogradMeta();
  detail::pool_deallocate(meta, sizeof(AutogradMeta));
}

void TensorImpl::wait_pending() {
  auto work = std::move(pending);
  work->wait();
}

void Tensor::throw_undefined() {
  WEFT_ERROR("Tensor: this tensor is undefined (default-constructed or an absent gradient)");
}


bool Tensor::is_contiguous() const {
  return detail::is_contiguous_geometry(shape(), strides());
}

void Tensor::fail_data_access() const {
  checked();
  WEFT_ERROR("data access: this is a DTensor; call to_local() for its local shard or full_tensor() for all of it");
}

template <class T>
T Tensor::item() const {
  WEFT_CHECK(numel() == 1, "item: expected a tensor with one element but got shape ", shape());
  return visit<kAllDTypes>(dtype(), "item", [&](auto tag) {
    using S = decltype(tag);
    return static_cast<T>(*static_cast<const S*>(raw_data()));
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor dense = detail::make_empty(shape(), dtype_v<T>, "to_vector");  // first: a huge view is refused by size
  detail::copy_into(dense, *this);
  std::vector<T> out(static_cast<size_t>(numel()));
  const T* src = static_cast<const T*>(dense.raw_data());
  std::copy(src, src + out.size(), out.begin());
  return out;
}

#define WEFT_INSTANTIATE_ACCESS(T)              \
  template T Tensor::item<T>() const;           \
  template std::vector<T> Tensor::to_vector<T>() const;
WEFT_INSTANTIATE_ACCESS(bool)
WEFT_INSTANTIATE_ACCESS(int64_t)
WEFT_INSTANTIATE_ACCESS(float)
WEFT_INSTANTIATE_ACCESS(double)
WEFT_INSTANTIATE_ACCESS(int32_t)
WEFT_INSTANTIATE_ACCESS(int8_t)
WEFT_INSTANTIATE_ACCESS(uint8_t)
WEFT_INSTANTIATE_ACCESS(BFloat16)
WEFT_INSTANTIATE_ACCESS(Half)
#undef WEFT_INSTANTIATE_ACCESS

namespace detail {

namespace {

// Note [Tensor object pool]
// A small op makes a TensorImpl and a Storage per output (and, when recording, a Node and an
// AutogradMeta); through malloc each is an allocation and a free costing as much as the op's
// arithmetic, and a chain of 200 nodes overflows malloc's per-thread cache. These objects come
// from this per-thread pool instead: one free list per exact size (in 8-byte units, so a block is
// only ever reused for an object of its own size). A block freed on another thread joins that
// thread's pool; each list keeps at most kPoolMax blocks and gives the rest, and everything at
// thread exit, back to operator delete.
// Blocks are cache-line aligned (Note [TensorImpl layout]): a TensorImpl then spans the fewest
// lines, and a Storage or a small node one line, where 16-byte alignment let each straddle one more.
constexpr size_t kUnit = 8;
constexpr std::align_val_t kBlockAlign{64};
constexpr size_t kMaxUnits = 128;  // objects up to 1 KiB
constexpr size_t kPoolMax = 1024;

struct PoolSlot {
  PoolSlot* next;
};

struct ObjectPool {
  PoolSlot* heads[kMaxUnits] = {};
  uint32_t counts[kMaxUnits] = {};
  ~ObjectPool();
};

enum class PoolState : uint8_t { Unset, Live, Dead };
// initial-exec: see framework/allocator.cpp.
[[gnu::tls_model("initial-exec")]] thread_local PoolState pool_state = PoolState::Unset;
[[gnu::tls_model("initial-exec")]] thread_local ObjectPool* pool_ptr = nullptr;
// Blocks this thread took from the pool minus those it gave back: the live objects a test counts.
[[gnu::tls_model("initial-exec")]] constinit thread_local int64_t pool_net = 0;

ObjectPool::~ObjectPool() {
  pool_state = PoolState::Dead;
  pool_ptr = nullptr;
  for (PoolSlot*& head : heads)
    while (head) {
      PoolSlot* next = head->next;
      ::operator delete(head, kBlockAlign);
      head = next;
    }
}

ObjectPool* object_pool() {
  if (pool_state == PoolState::Live) [[likely]] return pool_ptr;
  if (pool_state == PoolState::Dead) return nullptr;
  static thread_local ObjectPool pool;
  pool_ptr = &pool;
  pool_state = PoolState::Live;
  return pool_ptr;
}

}  // namespace

int64_t pool_live_objects() { return pool_net; }

void* pool_allocate(size_t bytes) {
  ++pool_net;
  size_t k = (bytes + kUnit - 1) / kUnit - 1;
  if (k < kMaxUnits)
    if (ObjectPool* pool = object_pool(); pool && pool->heads[k]) {
      PoolSlot* slot = pool->heads[k];
      pool->heads[k] = slot->next;
      --pool->counts[k];
      return slot;
    }
  return ::operator new((bytes + kUnit - 1) / kUnit * kUnit, kBlockAlign);
}

void pool_deallocate(void* ptr, size_t bytes) noexcept {
  --pool_net;
  size_t k = (bytes + kUnit - 1) / kUnit - 1;
  if (k < kMaxUnits)
    if (ObjectPool* pool = object_pool(); pool && pool->counts[k] < kPoolMax) {
      auto* slot = static_cast<PoolSlot*>(ptr);
      slot->next = pool->heads[k];
      pool->heads[k] = slot;
      ++pool->counts[k];
      return;
    }
  ::operator delete(ptr, kBlockAlign);
}

constinit thread_local const char* checked_op = nullptr;

Tensor make_empty(const Shape& shape, DType dtype, const char* op) {
  if (op == nullptr) op = checked_op != nullptr ? checked_op : "empty";
  const size_t nbytes = checked_nbytes(checked_numel(shape, op), element_size(dtype), shape, op);
  auto storage = std::allocate_shared<Storage>(PoolAllocator<Storage>(), nbytes, op);
  return Tensor(std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>(), std::move(storage), shape, dtype));
}

namespace {
// Throws unless every element of the geometry lies inside `storage` (see Note [Checked shape
// arithmetic]): the lowest and highest element offsets are summed with overflow checks.
void check_in_storage(const Storage* storage, const Shape& shape, const Shape& strides, int64_t offset,
                      DType dtype, const char* op) {
  WEFT_CHECK(shape.size() == strides.size(), op, ": got ", shape.size(), " sizes ", shape, " but ", strides.size(),
             " strides ", strides);
  if (checked_numel(shape, op) == 0 || storage == nullptr) return;
  int64_t low = offset, high = offset;
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t span = checked_mul(shape[d] - 1, strides[d], op);
    (span < 0 ? low : high) = checked_add(span < 0 ? low : high, span, op);
  }
  const int64_t capacity = static_cast<int64_t>(storage->nbytes() / element_size(dtype));
  WEFT_CHECK(low >= 0 && high < capacity, op, ": the geometry ", shape, " with strides ", strides, " at offset ",
             offset, " reaches elements ", low, " to ", high, ", outside the storage of ", capacity, " elements");
}
}  // namespace

Tensor make_alias(const Tensor& base, Shape shape, Shape strides, int64_t offset, const char* op) {
  check_plain(base, op);
  check_in_storage(base.impl()->storage.get(), shape, strides, offset, base.dtype(), op);
  auto alias = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>(), base.impl()->storage, std::move(shape),
                                                std::move(strides), offset, base.dtype());
  alias->pending = base.impl()->pending;  // a view of an unfinished async result waits for it too
  copy_spmd_type(*alias, *base.impl());
  return Tensor(std::move(alias));
}

void fail_plain(const Tensor& t, const char* op) {
  WEFT_CHECK(t.defined(), op, ": expected a defined tensor but got an undefined one");
  WEFT_ERROR(op, ": got a DTensor, but this op works on plain tensors only; "
             "call to_local() first, or use dist::local_map to run local code on DTensors");
}

bool is_contiguous_geometry(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (shape[i] == 0) return true;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

}  // namespace detail
}  // namespace weft
