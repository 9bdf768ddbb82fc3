// Convolutions with PyTorch's signatures: conv1d, conv2d, conv_transpose2d (float32 on oneDNN, float64
// on reference loops, see kernels/conv.h; bfloat16 and float16 computed in float32).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace weft {

// A spatial argument given once for both dims or as {h, w}: PyTorch's int-or-pair.
struct Size2d {
  Size2d(int64_t v) : h(v), w(v) {}  // NOLINT: implicit, as Python's int is
  Size2d(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  int64_t h, w;
};

// A convolution's padding: numbers (one for every spatial dim, or one per dim) or "valid" / "same".
struct ConvPadding {
  // A template, so that a literal 0 is a number rather than a null `const char*`.
  template <std::integral I>
  ConvPadding(I v) : values{static_cast<int64_t>(v)} {}  // NOLINT: implicit
  ConvPadding(int64_t h, int64_t w) : values{h, w} {}
  ConvPadding(const char* m) : mode(m) {}  // NOLINT
  ConvPadding(std::string m) : mode(std::move(m)) {}  // NOLINT
  std::string mode;  // "valid" or "same"; empty when `values` holds the padding
  std::vector<int64_t> values;
};

// input [N, C, H, W] (or unbatched [C, H, W]), weight [OC, C / groups, KH, KW], bias [OC].
// padding="same" (stride 1 only) pads so that the output keeps H and W, one more after for an even
// dilated kernel, as PyTorch does.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), Size2d stride = 1,
              ConvPadding padding = 0, Size2d dilation = 1, int64_t groups = 1);
// input [N, C, L] (or [C, L]), weight [OC, C / groups, K]: conv2d over a height of one.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              ConvPadding padding = 0, int64_t dilation = 1, int64_t groups = 1);
// The gradient of conv2d with respect to its input, as an op: input [N, C_in, H, W], weight
// [C_in, C_out / groups, KH, KW]; output H (H - 1) * stride - 2 * padding + dilation * (KH - 1) +
// output_padding + 1. output_padding must be smaller than the stride or the dilation.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), Size2d stride = 1,
                        Size2d padding = 0, Size2d output_padding = 0, int64_t groups = 1, Size2d dilation = 1);

}  // namespace weft
