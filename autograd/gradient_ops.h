// The engine's gradient arithmetic (sum, reduce to shape, cast, copy) as recording ops, for a
// backward with create_graph, where the gradients themselves are differentiated. Autograd sits
// below ops, so these are their own small nodes on the kernels; each backward is made of the
// others, so they differentiate any number of times. See Note [create_graph] in engine.cpp.
#pragma once

#include "autograd/node.h"

namespace weft::autograd {

// a + b in their promoted dtype (a and b of one shape).
Tensor recorded_add(const Tensor& a, const Tensor& b);
// x summed down to `shape` (x's shape broadcasts from it).
Tensor recorded_sum_to(const Tensor& x, const Shape& shape);
// x broadcast to `shape`, as a new dense tensor.
Tensor recorded_expand(const Tensor& x, const Shape& shape);
// x converted to `dtype` (x itself when it already is).
Tensor recorded_cast(const Tensor& x, DType dtype);
// A dense copy of x of its own: what ends in .grad.
Tensor recorded_clone(const Tensor& x);

}  // namespace weft::autograd
