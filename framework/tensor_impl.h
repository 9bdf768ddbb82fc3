// TensorImpl: what a tensor is (storage, shape, strides, offset, dtype) plus its autograd and
// distributed extensions, which stay null for plain tensors.
#pragma once

#include <memory>

#include "framework/dtype.h"
#include "framework/shape.h"
#include "framework/storage.h"

namespace weft {

namespace detail {
// A per-thread pool for the small objects every op makes (TensorImpl, Storage, nodes); blocks are
// operator new blocks of the requested size rounded to 8 bytes. See Note [Tensor object pool].
void* pool_allocate(size_t bytes);
void pool_deallocate(void* ptr, size_t bytes) noexcept;
// Objects (tensors, storages, nodes, autograd metas) allocated minus freed on this thread: a
// leak test's count of live objects.
int64_t pool_live_objects();

// For std::allocate_shared: the object and its control block in one pooled block.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { pool_deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const { return true; }
};
}  // namespace detail

class Tensor;
struct AutogradMeta;
struct AutogradMetaDeleter {
  void operator()(AutogradMeta* meta) const;
};
using AutogradMetaPtr = std::unique_ptr<AutogradMeta, AutogradMetaDeleter>;

// The distributed layer's spec (mesh, placements, local tensor). The framework only knows it
// exists, so that ops can refuse DTensors and autograd can ask it to add gradients.
class DistSpec {
 public:
  virtual ~DistSpec() = default;
  // a + b for two gradients, at least one of which carries this spec (the engine asks whichever
  // does). See Note [Gradient arithmetic] in autograd/engine.h.
  virtual Tensor add_gradients(const Tensor& a, const Tensor& b) const = 0;
  // sum += grad, in place, for a .grad `sum` that carries this spec; false when that can not be
  // done in place (the engine then adds out of place).
  virtual bool add_gradient_in_place(const Tensor& sum, const Tensor& grad) const = 0;
};

// Something a tensor's data waits for before its first use: an asynchronous collective. Views and
// detached aliases share it, so wait() must be idempotent.
class PendingWork {
 public:
  virtual ~PendingWork() = default;
  virtual void wait() = 0;
};

// Note [TensorImpl layout]
// Every op reads its operands' impls, and after a large kernel they are rarely still in L1: a
// 64^3 matmul's operands fill it. The fields an op reads first (storage, extensions, dtype,
// offset, the data address) come before the shape and strides, so that a tensor of up to 3 dims
// is read in three cache lines (with the shared_ptr control block before it), not four; and the
// data address is kept here, so reading it does not touch the Storage.
struct TensorImpl {
  TensorImpl(std::shared_ptr<Storage> s, Shape sh, Shape st, int64_t off, DType dt)
      : storage(std::move(s)), offset(off), dtype(dt), shape(std::move(sh)), strides(std::move(st)) {
    set_data_address();
  }
  // A contiguous impl of `sh`: the strides are computed in place (make_empty's fast path).
  TensorImpl(std::shared_ptr<Storage> s, const Shape& sh, DType dt)
      : storage(std::move(s)), dtype(dt), shape(sh), strides(sh) {  // strides: sized by a copy, then set
    int64_t running = 1;
    for (size_t i = sh.size(); i-- > 0;) {
      strides[i] = running;
      running *= sh[i] > 0 ? sh[i] : 1;
    }
    set_data_address();
  }
  // An alias of `base` without its autograd (detach): the same storage, view, dtype, pending work,
  // distributed spec and SPMD type. Fields are copied straight from `base`, no Shape temporaries.
  struct AliasOf {
    const TensorImpl& base;
  };
  explicit TensorImpl(AliasOf alias)
      : storage(alias.base.storage), dist(alias.base.dist), pending(alias.base.pending),
        data_address(alias.base.data_address), offset(alias.base.offset), dtype(alias.base.dtype),
        spmd_undecided(alias.base.spmd_undecided), spmd_types(alias.base.spmd_types),
        spmd_origin(alias.base.spmd_origin), spmd_epoch(alias.base.spmd_epoch), shape(alias.base.shape),
        strides(alias.base.strides) {}
  ~TensorImpl();

  // Waits for pending communication, then the address of element [0, ..., 0].
  void* data() {
    if (pending) [[unlikely]] wait_pending();
    return data_address;
  }
  void wait_pending();

  // Storage, offset and dtype never change after construction, so neither does the address.
  void set_data_address() {
    data_address = storage ? static_cast<char*>(storage->data()) + offset * static_cast<int64_t>(element_size(dtype))
                           : nullptr;
  }

  std::shared_ptr<Storage> storage;
  std::shared_ptr<DistSpec> dist;
  std::shared_ptr<PendingWork> pending;
  AutogradMetaPtr autograd;
  void* data_address = nullptr;  // storage's data plus offset
  int64_t offset = 0;            // in elements
  DType dtype;
  // The tensor's local SPMD type inside a checking local_map body, between dtype and `shape`
  // (see Note [Local SPMD types] in autograd/spmd_types.h; only autograd/spmd_types.cpp reads
  // them). Valid only while spmd_epoch is the running checker's epoch; 0 is never one.
  uint8_t spmd_undecided = 0;  // mesh axes whose Replicate input has not yet shown R or I
  uint16_t spmd_types = 0;     // 2 bits per mesh axis (spmd::Type)
  uint16_t spmd_origin = 0;    // 1 + the local_map input its R/I/undecided axes come from
  // The checking call that typed it: 32 bits, so that a tensor kept across calls (a buffer updated
  // in place in a body) is not mistaken for one of a later call until four billion calls later.
  uint32_t spmd_epoch = 0;
  Shape shape;
  Shape strides;
};

// An alias carries its base's SPMD type (detach, the identity views).
inline void copy_spmd_type(TensorImpl& to, const TensorImpl& from) {
  to.spmd_undecided = from.spmd_undecided;
  to.spmd_types = from.spmd_types;
  to.spmd_epoch = from.spmd_epoch;
  to.spmd_origin = from.spmd_origin;
}

}  // namespace weft
