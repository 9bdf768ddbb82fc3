// Tensor: the cheap, shared handle users hold; the ops and autograd entry points as methods.
#pragma once

#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/dtype.h"
#include "framework/scalar.h"
#include "framework/shape.h"
#include "framework/tensor_impl.h"

namespace weft {

namespace autograd {
class Node;
}
namespace indexing {
class TensorIndex;  // ops/tensor_index.h
}

// Options for factories: `zeros({2, 3}, kFloat64)`, `randn({4}, requires_grad())`.
struct TensorOptions {
  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}
  TensorOptions dtype(DType d) const { auto o = *this; o.dtype_ = d; return o; }
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
  DType dtype_ = DType::Float32;
  bool requires_grad_ = false;
};
inline TensorOptions requires_grad(bool r = true) { return TensorOptions().requires_grad(r); }
inline TensorOptions dtype(DType d) { return TensorOptions(d); }

class Tensor;

// A dim given as a plain integer (not bool): the int overloads such as x.sum(1).
template <class I>
concept DimIndex = std::integral<I> && !std::same_as<I, bool>;
using TensorList = std::vector<Tensor>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- metadata ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked()->shape; }
  const Shape& sizes() const { return shape(); }
  const Shape& strides() const { return checked()->strides; }
  int64_t size(int64_t d) const { return shape()[dim_index(d, dim(), "size")]; }
  int64_t stride(int64_t d) const { return strides()[dim_index(d, dim(), "stride")]; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t numel() const { return numel_of(shape()); }
  int64_t storage_offset() const { return checked()->offset; }
  DType dtype() const { return checked()->dtype; }
  size_t element_size() const { return weft::element_size(dtype()); }
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  bool is_dtensor() const { return impl_ && impl_->dist != nullptr; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  uint64_t version() const { return checked()->storage->version(); }
  void bump_version() const { checked()->storage->bump_version(); }
  // Made under InferenceMode: see Note [Inference tensors] (framework/storage.h).
  bool is_inference() const { return defined() && impl_->storage && impl_->storage->is_inference(); }
  bool shares_storage(const Tensor& other) const {
    return defined() && other.defined() && impl_->storage == other.impl_->storage;
  }

  // --- element access (plain tensors only) ---
  template <class T>
  T* data_ptr() const;
  void* raw_data() const {
    TensorImpl* impl = impl_.get();
    if (impl == nullptr || impl->dist != nullptr) [[unlikely]] fail_data_access();
    return impl->data();
  }
  template <class T>
  T item() const;
  template <class T>
  std::vector<T> to_vector() const;

  // --- autograd (defined in autograd/) ---
  bool requires_grad() const;
  Tensor& requires_grad_(bool value = true);
  const Tensor& grad() const;
  Tensor& mutable_grad() const;
  void set_grad(const Tensor& grad) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  bool is_leaf() const;
  uint32_t output_nr() const;
  // create_graph: the backward is recorded, so the gradients are differentiable (autograd/engine.h).
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  // Non-leaves: .grad() keeps the gradient of the tensor's current value, also after an in-place op
  // gave it a new history (see Note [retain_grad moves with the history] in autograd/node.cpp).
  void retain_grad() const;
  bool retains_grad() const;
  // Runs on the gradient before it is used; returning a defined tensor replaces the gradient. On a
  // non-leaf it sees the gradient of the value it was registered on, even after an in-place op.
  void register_hook(std::function<Tensor(const Tensor&)> hook) const;
  // Leaves only: runs after the gradient has been accumulated into .grad().
  void register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  Tensor detach() const;
  Tensor& detach_();

  // --- ops as methods (defined in ops/) ---
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor permute(const Shape& dims) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  // x.index({Slice(1, None, 2), 3, None, Ellipsis, mask, idx}) as libtorch's (ops/tensor_index.h).
  Tensor index(std::initializer_list<indexing::TensorIndex> indices) const;
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Tensor& values);
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, Scalar value);
  Tensor sum() const;
  Tensor sum(const Shape& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape& dims, bool keepdim = false) const;
  // x.sum(1) as in torch: one dim given as a number (a template, so that sum({}) still means every dim).
  template <DimIndex I>
  Tensor sum(I dim, bool keepdim = false) const { return sum(Shape{static_cast<int64_t>(dim)}, keepdim); }
  template <DimIndex I>
  Tensor mean(I dim, bool keepdim = false) const { return mean(Shape{static_cast<int64_t>(dim)}, keepdim); }
  Tensor matmul(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor relu() const;
  Tensor pow(double exponent) const;

  // In place: bump the version counter (see autograd's saved tensors).
  Tensor& add_(const Tensor& other, Scalar alpha = 1);
  Tensor& add_(Scalar other);
  Tensor& sub_(const Tensor& other, Scalar alpha = 1);
  Tensor& sub_(Scalar other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(Scalar other);
  Tensor& div_(const Tensor& other);
  Tensor& div_(Scalar other);
  Tensor& zero_();
  Tensor& fill_(Scalar value);
  Tensor& copy_(const Tensor& src);
  Tensor& clamp_(std::optional<Scalar> min, std::optional<Scalar> max);

  std::string to_string() const;

 private:
  TensorImpl* checked() const {
    if (impl_ == nullptr) [[unlikely]] throw_undefined();
    return impl_.get();
  }
  [[noreturn]] static void throw_undefined();
  [[noreturn]] void fail_data_access() const;
  std::shared_ptr<TensorImpl> impl_;
};

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator%(const Tensor& a, const Tensor& b);  // remainder: the sign of b, as Python's %
Tensor operator%(const Tensor& a, Scalar b);
Tensor operator%(Scalar a, const Tensor& b);

// Comparisons give bool tensors, as in libtorch (compare whole tensors with weft::equal).
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, Scalar b);
Tensor operator!=(const Tensor& a, Scalar b);
Tensor operator<(const Tensor& a, Scalar b);
Tensor operator<=(const Tensor& a, Scalar b);
Tensor operator>(const Tensor& a, Scalar b);
Tensor operator>=(const Tensor& a, Scalar b);
Tensor operator==(Scalar a, const Tensor& b);
Tensor operator!=(Scalar a, const Tensor& b);
Tensor operator<(Scalar a, const Tensor& b);
Tensor operator<=(Scalar a, const Tensor& b);
Tensor operator>(Scalar a, const Tensor& b);
Tensor operator>=(Scalar a, const Tensor& b);

// Bitwise on bool and integral tensors (logical on bool); ! is logical not on any dtype.
Tensor operator&(const Tensor& a, const Tensor& b);
Tensor operator|(const Tensor& a, const Tensor& b);
Tensor operator^(const Tensor& a, const Tensor& b);
Tensor operator&(const Tensor& a, Scalar b);
Tensor operator|(const Tensor& a, Scalar b);
Tensor operator^(const Tensor& a, Scalar b);
Tensor operator&(Scalar a, const Tensor& b);
Tensor operator|(Scalar a, const Tensor& b);
Tensor operator^(Scalar a, const Tensor& b);
Tensor operator~(const Tensor& a);
Tensor operator!(const Tensor& a);

// In place, through add_/sub_/mul_/div_ (so autograd's version checks apply).
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, Scalar b);
Tensor& operator-=(Tensor& a, Scalar b);
Tensor& operator*=(Tensor& a, Scalar b);
Tensor& operator/=(Tensor& a, Scalar b);

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// --- low-level construction, for ops and kernels ---
namespace detail {

// The op that last checked an input on this thread (check_plain): an output allocated without an
// explicit op (a kernel's) names it when the allocation fails, e.g. exp of a huge expanded view.
[[gnu::tls_model("initial-exec")]] extern thread_local const char* checked_op;

// A new contiguous tensor, uninitialised, memory from the caching allocator. A bad or overflowing
// shape, or an allocation failure, names `op`, by default the op that last checked its inputs
// (see Note [Checked shape arithmetic]).
Tensor make_empty(const Shape& shape, DType dtype, const char* op = nullptr);
// A tensor sharing `base`'s storage with other geometry; no autograd history. A geometry that
// reaches outside the storage names `op`.
Tensor make_alias(const Tensor& base, Shape shape, Shape strides, int64_t offset, const char* op = "view");
// Throws unless `t` is a defined plain tensor; `op` names the caller. Inline: every op calls it.
[[noreturn]] void fail_plain(const Tensor& t, const char* op);
inline void check_plain(const Tensor& t, const char* op) {
  checked_op = op;
  if (!t.defined() || t.is_dtensor()) [[unlikely]] fail_plain(t, op);
}
// True when the geometry covers exactly a contiguous range.
bool is_contiguous_geometry(const Shape& shape, const Shape& strides);

}  // namespace detail

template <class T>
T* Tensor::data_ptr() const {
  WEFT_CHECK(dtype_v<T> == dtype(), "data_ptr: tensor has dtype ", dtype_name(dtype()),
             " but the requested type is ", dtype_name(dtype_v<T>));
  return static_cast<T*>(raw_data());
}

}  // namespace weft
