// Tensor metadata, element access and low-level construction.
#include "framework/tensor.h"

#include "framework/autograd_meta.h"
#include "framework/copy.h"

namespace weft {

TensorImpl::~TensorImpl() = default;
void AutogradMetaDeleter::operator()(AutogradMeta* meta) const { delete meta; }

void TensorImpl::wait_pending() {
  auto work = std::move(pending);
  work->wait();
}

TensorImpl* Tensor::checked() const {
  WEFT_CHECK(impl_ != nullptr, "Tensor: this tensor is undefined (default-constructed or an absent gradient)");
  return impl_.get();
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  return detail::is_contiguous_geometry(shape(), strides());
}

void* Tensor::raw_data() const {
  TensorImpl* impl = checked();
  WEFT_CHECK(impl->dist == nullptr,
             "data access: this is a DTensor; call to_local() for its local shard or full_tensor() for all of it");
  return impl->data();
}

template <class T>
T Tensor::item() const {
  WEFT_CHECK(numel() == 1, "item: expected a tensor with one element but got shape ", shape());
  return visit_dtype(dtype(), [&](auto tag) {
    using S = decltype(tag);
    return static_cast<T>(*static_cast<const S*>(raw_data()));
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  Tensor dense = detail::make_empty(shape(), dtype_v<T>);
  detail::copy_into(dense, *this);
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
#undef WEFT_INSTANTIATE_ACCESS

namespace detail {

Tensor make_empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape)
    WEFT_CHECK(s >= 0, "empty: sizes must be non-negative but got ", shape);
  size_t nbytes = static_cast<size_t>(numel_of(shape)) * element_size(dtype);
  auto storage = std::make_shared<Storage>(nbytes);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), shape, contiguous_strides(shape), 0, dtype));
}

Tensor make_alias(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  check_plain(base, "view");
  auto alias = std::make_shared<TensorImpl>(base.impl()->storage, std::move(shape), std::move(strides), offset,
                                            base.dtype());
  alias->pending = base.impl()->pending;  // a view of an unfinished async result waits for it too
  return Tensor(std::move(alias));
}

void check_plain(const Tensor& t, const char* op) {
  WEFT_CHECK(t.defined(), op, ": expected a defined tensor but got an undefined one");
  WEFT_CHECK(!t.is_dtensor(), op, ": got a DTensor, but this op works on plain tensors only; "
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
