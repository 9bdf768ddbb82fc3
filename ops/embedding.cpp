// embedding.cpp: row lookup in a (num_embeddings, dim) weight; backward adds rows into a zero gradient.
#include "ops/embedding.h"
#include "autograd/node.h"
#include "framework/factories.h"
#include "kernels/nn_kernels.h"
#include "ops/shape_internal.h"
#include "ops/shape_ops.h"

namespace weft {

namespace {
struct EmbeddingBackward final : autograd::Node {
  static constexpr bool kSupportsDoubleBackward = true;
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Linear;
  autograd::SavedTensor indices;
  int64_t num_weights = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    if (GradMode::is_enabled()) [[unlikely]] {  // create_graph: the rows summed into zeros, recorded
      const int64_t width = grads[0].size(-1);
      Tensor rows = reshape(grads[0], {-1, width});
      return {detail::index_add(zeros({num_weights, width}, grads[0].dtype()), 0,
                                reshape(indices.unpack(this), {-1}), rows)};
    }
    return {kernels::embedding_backward(grads[0], indices.unpack(this), num_weights)};
  }
  std::string name() const override { return "EmbeddingBackward"; }
};
}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  detail::check_plain(weight, "embedding");
  detail::check_plain(indices, "embedding");
  WEFT_CHECK(weight.dim() == 2, "embedding: expected a 2-D weight (num_embeddings, embedding_dim) but got shape ",
             weight.shape());
  WEFT_CHECK(indices.dtype() == kInt64, "embedding: expected indices of dtype int64 but got ", indices.dtype(),
             " of shape ", indices.shape());
  Tensor out = kernels::embedding(weight, indices);  // checks every index is in range
  Tensor y = autograd::record<EmbeddingBackward>(std::move(out), [&](EmbeddingBackward& n) {
    n.save(n.indices, indices);
    n.num_weights = weight.size(0);
  }, weight);
  // The indices are no gradient input, but they select per rank: Varying indices make Varying rows,
  // and a Partial weight must not meet them (Multilinear). Note [Local SPMD types].
  spmd::check_op(spmd::Linearity::Multilinear, "embedding", y, {&indices, &weight});
  return y;
}

}  // namespace weft
