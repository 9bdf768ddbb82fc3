// embedding.cpp: row lookup in a (num_embeddings, dim) weight; backward adds rows into a zero gradient.
#include "ops/embedding.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/nn_kernels.h"
#include "ops/binary.h"
#include "ops/shape_internal.h"
#include "ops/shape_ops.h"

namespace weft {

namespace {
struct EmbeddingBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  autograd::SavedTensor indices;
  int64_t num_weights = 0;
  std::optional<int64_t> padding_idx;  // wrapped into [0, num_weights)
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    Tensor g;
    if (GradMode::is_enabled()) [[unlikely]] {  // create_graph: the rows summed into zeros, recorded
      const int64_t width = grads[0].size(-1);
      Tensor rows = reshape(grads[0], {-1, width});
      g = detail::index_add(zeros({num_weights, width}, grads[0].dtype()), 0, reshape(indices.unpack(this), {-1}),
                            rows);
    } else {
      g = kernels::embedding_backward(grads[0], indices.unpack(this), num_weights);
    }
    if (!padding_idx) return {g};
    // The padding row's gradient is zero: a mask over the rows (recorded under create_graph).
    Tensor keep = ne(reshape(arange(num_weights), {num_weights, 1}), *padding_idx).to(g.dtype());
    return {mul(g, keep)};
  }
  std::string name() const override { return "EmbeddingBackward"; }
};
}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices_given, std::optional<int64_t> padding_idx) {
  detail::check_plain(weight, "embedding");
  detail::check_plain(indices_given, "embedding");
  WEFT_CHECK(weight.dim() == 2, "embedding: expected a 2-D weight (num_embeddings, embedding_dim) but got shape ",
             weight.shape());
  WEFT_CHECK(indices_given.dtype() == kInt64 || indices_given.dtype() == kInt32,
             "embedding: expected indices of dtype int64 or int32 but got ", indices_given.dtype(), " of shape ",
             indices_given.shape());
  const Tensor indices = indices_given.dtype() == kInt64 ? indices_given : indices_given.to(kInt64);
  if (padding_idx) {
    const int64_t n = weight.size(0);
    WEFT_CHECK(*padding_idx >= -n && *padding_idx < n, "embedding: padding_idx must be within [", -n, ", ", n,
               ") (num_embeddings ", n, ") but got ", *padding_idx);
    if (*padding_idx < 0) *padding_idx += n;
  }
  Tensor out = kernels::embedding(weight, indices);  // checks every index is in range
  Tensor y = autograd::record<EmbeddingBackward>(std::move(out), [&](EmbeddingBackward& n) {
    n.save(n.indices, indices);
    n.num_weights = weight.size(0);
    n.padding_idx = padding_idx;
  }, weight);
  // The indices are no gradient input, but they select per rank: Varying indices make Varying rows,
  // and a Partial weight must not meet them (Multilinear). Note [Local SPMD types].
  spmd::check_op(spmd::Linearity::Multilinear, "embedding", y, {&indices, &weight});
  return y;
}

}  // namespace weft
