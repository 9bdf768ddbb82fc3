// dropout: zeroes elements with probability p while training (gen: the default generator if null).
#pragma once

#include "framework/generator.h"
#include "framework/tensor.h"

namespace weft {

Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

}  // namespace weft
