// tensor_methods.cpp: the Tensor methods that are ops ("ops as methods" in framework/tensor.h),
// each forwarding to its free function.
#include "framework/tensor.h"
#include "ops/binary.h"
#include "ops/copy_ops.h"
#include "ops/indexing.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace weft {

Tensor Tensor::contiguous() const { return weft::contiguous(*this); }
Tensor Tensor::clone() const { return weft::clone(*this); }
Tensor Tensor::to(DType dtype) const { return weft::to_dtype(*this, dtype); }
Tensor Tensor::reshape(const Shape& shape) const { return weft::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return weft::view(*this, shape); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return weft::flatten(*this, start_dim, end_dim); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return weft::transpose(*this, dim0, dim1); }

// PyTorch's t(): matrices transpose, 0-D and 1-D tensors come back as they are.
Tensor Tensor::t() const {
  WEFT_CHECK(dim() <= 2, "t: expected a tensor with at most 2 dims but got shape ", shape(),
             "; use transpose(dim0, dim1)");
  return dim() < 2 ? weft::transpose(*this, 0, 0) : weft::transpose(*this, 0, 1);
}

Tensor Tensor::permute(const Shape& dims) const { return weft::permute(*this, dims); }
Tensor Tensor::unsqueeze(int64_t dim) const { return weft::unsqueeze(*this, dim); }
Tensor Tensor::squeeze() const { return weft::squeeze(*this); }
Tensor Tensor::squeeze(int64_t dim) const { return weft::squeeze(*this, dim); }
Tensor Tensor::expand(const Shape& shape) const { return weft::expand(*this, shape); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return weft::narrow(*this, dim, start, length);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return weft::select(*this, dim, index); }
Tensor Tensor::sum() const { return weft::sum(*this); }
Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return weft::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return weft::mean(*this); }
Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return weft::mean(*this, dims, keepdim); }
Tensor Tensor::matmul(const Tensor& other) const { return weft::matmul(*this, other); }
Tensor Tensor::exp() const { return weft::exp(*this); }
Tensor Tensor::log() const { return weft::log(*this); }
Tensor Tensor::relu() const { return weft::relu(*this); }
Tensor Tensor::pow(double exponent) const { return weft::pow(*this, Scalar(exponent)); }

}  // namespace weft
