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
};

// Something a tensor's data waits for before its first use: an asynchronous collective. Views and
// detached aliases share it, so wait() must be idempotent.
class PendingWork {
 public:
  virtual ~PendingWork() = default;
  virtual void wait() = 0;
};

struct TensorImpl {
  TensorImpl(std::shared_ptr<Storage> s, Shape sh, Shape st, int64_t off, DType dt)
      : storage(std::move(s)), shape(std::move(sh)), strides(std::move(st)), offset(off), dtype(dt) {}
  // A contiguous impl of `sh`: the strides are computed in place (make_empty's fast path).
  TensorImpl(std::shared_ptr<Storage> s, const Shape& sh, DType dt)
      : storage(std::move(s)), shape(sh), strides(sh), dtype(dt) {  // strides: sized by a copy, then set
    int64_t running = 1;
    for (size_t i = sh.size(); i-- > 0;) {
      strides[i] = running;
      running *= sh[i] > 0 ? sh[i] : 1;
    }
  }
  ~TensorImpl();

  // Waits for pending communication, then the address of element [0, ..., 0].
  void* data() {
    if (pending) [[unlikely]] wait_pending();
    char* base = static_cast<char*>(storage->data());
    return offset == 0 ? base : base + offset * static_cast<int64_t>(element_size(dtype));
  }
  void wait_pending();

  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype;
  AutogradMetaPtr autograd;
  std::shared_ptr<DistSpec> dist;
  std::shared_ptr<PendingWork> pending;
};

}  // namespace weft
