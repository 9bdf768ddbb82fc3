// Indexing with libtorch's syntax: x.index({Slice(1, None, 2), 3, None, Ellipsis, mask, idx}) and
// x.index_put_({...}, values), with PyTorch's basic and advanced indexing semantics.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <variant>
#include <vector>

#include "framework/tensor.h"

namespace weft {
namespace indexing {

// A missing bound (Slice(None, 3)) or a new dim of size 1 (x.index({None})), as torch::indexing::None.
inline constexpr std::nullopt_t None = std::nullopt;

struct EllipsisIndexType {};
// Every dim the other indices leave out.
inline constexpr EllipsisIndexType Ellipsis{};

// start:stop:step with Python's defaults and clamping; step must be positive (as in PyTorch).
struct Slice {
  Slice(std::optional<int64_t> start = std::nullopt, std::optional<int64_t> stop = std::nullopt,
        std::optional<int64_t> step = std::nullopt)
      : start(start), stop(stop), step(step) {}
  std::optional<int64_t> start, stop, step;
};

// One entry of an index list: an integer (selects, removing the dim), a Slice (a strided view), None
// (a new dim of size 1), Ellipsis, a bool (a new dim of size 1 or 0), or a tensor: int64 indices or a
// bool mask (advanced indexing, which copies).
class TensorIndex {
 public:
  TensorIndex(std::nullopt_t) : value_(NoneIndex{}) {}
  TensorIndex(EllipsisIndexType) : value_(EllipsisIndexType{}) {}
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  TensorIndex(I i) : value_(static_cast<int64_t>(i)) {}
  TensorIndex(bool b) : value_(b) {}
  TensorIndex(Slice s) : value_(s) {}
  TensorIndex(Tensor t) : value_(std::move(t)) {}

  struct NoneIndex {};
  using Value = std::variant<NoneIndex, EllipsisIndexType, int64_t, bool, Slice, Tensor>;
  const Value& value() const { return value_; }

 private:
  Value value_;
};

}  // namespace indexing

// x[indices]: a view when every index is basic (integers, slices, None, Ellipsis, bools), else a
// copy gathered by the index tensors, which broadcast together; their result dims replace the
// indexed dims where those are adjacent, and lead otherwise (PyTorch's rule). Differentiable.
Tensor index(const Tensor& x, const std::vector<indexing::TensorIndex>& indices);
// x[indices] = values (broadcast to x[indices]'s shape), in place; with accumulate, added instead
// (repeated positions add up). Differentiable in x and values.
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices, const Tensor& values,
                   bool accumulate = false);
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices, Scalar value);

}  // namespace weft
