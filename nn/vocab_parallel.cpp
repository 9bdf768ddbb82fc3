// nn/vocab_parallel.cpp: the vocab-parallel embedding, tied head and cross-entropy. See Note
// [Vocabulary parallelism] in nn/vocab_parallel.h.
#include "nn/vocab_parallel.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "distributed/collectives.h"
#include "distributed/spmd.h"
#include "distributed/sharding.h"
#include "framework/factories.h"
#include "ops/autocast.h"
#include "ops/ops.h"

namespace weft::nn::parallel {
namespace {

// Ids in [offset, offset + rows) as local row numbers, every other id as row 0, and a mask (the
// logits' or table's dtype) that is 1 exactly where the id is this rank's. `what` names the ids in
// errors; ids equal to `skip` (an ignore_index) are allowed and masked out.
struct LocalIds {
  Tensor rows;  // int64, the ids' shape
  Tensor mine;  // floating, the ids' shape
};
LocalIds local_ids(const Tensor& ids, int64_t vocab_size, int64_t offset, int64_t rows, DType float_type, const char* op,
                   const char* what, std::optional<int64_t> skip = std::nullopt) {
  WEFT_CHECK(ids.dtype() == kInt64, op, ": expected ", what, " of dtype int64 but got ", ids.dtype());
  Tensor in = ids.contiguous();
  LocalIds out{empty(in.shape(), dtype(kInt64)), empty(in.shape(), dtype(float_type))};
  const int64_t* id = in.data_ptr<int64_t>();
  int64_t* row = out.rows.data_ptr<int64_t>();
  visit_floating(float_type, op, [&](auto tag) {
    using T = decltype(tag);
    T* mine = out.mine.data_ptr<T>();
    for (int64_t i = 0, n = in.numel(); i < n; ++i) {
      const int64_t v = id[i];
      if (skip && v == *skip) {
        row[i] = 0;
        mine[i] = T(0);
        continue;
      }
      WEFT_CHECK(v >= 0 && v < vocab_size, op, ": ", what, " ", v, " is out of range for a vocabulary of ",
                 vocab_size, " (expected 0 <= id < ", vocab_size, skip ? " or the ignore_index " : "",
                 skip ? std::to_string(*skip) : std::string(), ")");
      const bool here = v >= offset && v < offset + rows;
      row[i] = here ? v - offset : 0;
      mine[i] = here ? T(1) : T(0);
    }
  });
  return out;
}

void check_vocab(int64_t vocab_size, const dist::DeviceMesh& mesh, int64_t mesh_dim, const char* op) {
  WEFT_CHECK(mesh.defined() && mesh_dim >= 0 && mesh_dim < mesh.ndim(), op, ": expected a mesh dim of the mesh but got ",
             mesh_dim);
  WEFT_CHECK(vocab_size >= mesh.size(mesh_dim), op, ": a vocabulary of ", vocab_size, " split over ",
             mesh.size(mesh_dim), " ranks leaves a rank without rows; expected a vocabulary of at least ",
             mesh.size(mesh_dim));
}

}  // namespace

std::pair<int64_t, int64_t> vocab_shard(int64_t vocab_size, const dist::DeviceMesh& mesh, int64_t mesh_dim) {
  return dist::chunk_size_and_offset(vocab_size, mesh.size(mesh_dim), mesh.get_local_rank(mesh_dim));
}

Tensor vocab_parallel_embedding(const Tensor& indices, const Tensor& local_weight, int64_t vocab_size,
                                const dist::DeviceMesh& mesh, int64_t mesh_dim, int64_t sequence_dim) {
  constexpr const char* op = "vocab_parallel_embedding";
  check_vocab(vocab_size, mesh, mesh_dim, op);
  auto [rows, offset] = vocab_shard(vocab_size, mesh, mesh_dim);
  WEFT_CHECK(local_weight.dim() == 2 && local_weight.size(0) == rows, op, ": expected this rank's ", rows,
             " rows of the table (rows ", offset, " to ", offset + rows, " of ", vocab_size, ") but got shape ",
             local_weight.shape());
  LocalIds ids = local_ids(indices, vocab_size, offset, rows, local_weight.dtype(), op, "index");
  // An empty shard looks nothing up: its zeros still take part in the sum.
  Shape out_shape = indices.shape();
  out_shape.push_back(local_weight.size(1));
  Tensor mine = rows == 0 ? zeros(out_shape, dtype(local_weight.dtype()))
                          : mul(embedding(local_weight, ids.rows), unsqueeze(ids.mine, -1));
  return sequence_dim >= 0 ? dist::funcol::reduce_scatter(mine, dist::ReduceOp::Sum, sequence_dim, mesh, mesh_dim)
                           : dist::funcol::reduce_from_parallel_region(mine, mesh, mesh_dim);
}

Tensor vocab_parallel_logits(const Tensor& x, const Tensor& local_weight, const dist::DeviceMesh& mesh,
                             int64_t mesh_dim, int64_t sequence_dim, std::vector<int64_t> sequence_sizes) {
  WEFT_CHECK(local_weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == local_weight.size(1),
             "vocab_parallel_logits: expected x (..., ", local_weight.size(1), ") for the table's rows of shape ",
             local_weight.shape(), " but got x of shape ", x.shape());
  Tensor shared = sequence_dim >= 0
                      ? dist::funcol::all_gather(x, sequence_dim, mesh, mesh_dim, std::move(sequence_sizes))
                      : dist::funcol::copy_to_parallel_region(x, mesh, mesh_dim);  // backward: all-reduce
  return linear(shared, local_weight);
}

namespace {

// Typed as a collective (Note [Local SPMD types]): this rank's logits (Varying) in, a loss the same on
// every rank out, whose gradient arrives the same on every rank (Invariant) and is used locally.
constexpr dist::detail::CollectiveType kCrossEntropyType{
    "vocab_parallel_cross_entropy", spmd::type_bit(spmd::Type::Varying), spmd::Type::Invariant,
    "it combines every rank's part of the vocabulary: pass it this rank's logits, sharded over the "
    "vocabulary (Varying)"};

// d loss_n / d x_nj = g_n (exp(x_nj - lse_n) - (1 - eps) [j is the target] - eps / V) on this rank's
// columns: no communication (Note [Vocabulary parallelism]). Not differentiable again.
struct VocabParallelCrossEntropyBackward final : autograd::Node {
  static constexpr spmd::Linearity spmd_linearity = spmd::Linearity::Own;  // typed by the op
  autograd::SavedTensor logits;  // (n, rows)
  Tensor lse;                    // (n): log-sum-exp over the whole vocabulary
  Tensor target_rows, mine;      // (n): the target's local column, 1 where this rank holds it
  double label_smoothing = 0.0;
  int64_t vocab_size = 0;
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    Tensor grad = exp(sub(logits.unpack(this), unsqueeze(lse, 1)));  // the softmax's columns here (fresh)
    const int64_t n = grad.size(0), rows = grad.size(1);
    const int64_t* row = target_rows.data_ptr<int64_t>();
    visit_floating(grad.dtype(), "vocab_parallel_cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      T* g = grad.data_ptr<T>();
      const T* here = mine.data_ptr<T>();
      for (int64_t i = 0; i < n; ++i)
        if (here[i] != T(0)) g[i * rows + row[i]] -= static_cast<T>(1.0 - label_smoothing);
    });
    if (label_smoothing > 0) grad = sub(grad, label_smoothing / static_cast<double>(vocab_size));
    return {mul(grad, unsqueeze(grads[0], 1))};
  }
  std::string name() const override { return "VocabParallelCrossEntropyBackward"; }
};

}  // namespace

Tensor vocab_parallel_cross_entropy(const Tensor& local_logits, const Tensor& target, int64_t vocab_size,
                                    const dist::DeviceMesh& mesh, int64_t mesh_dim, const std::string& reduction,
                                    int64_t ignore_index, double label_smoothing) {
  if (autocast_enabled()) [[unlikely]]  // as cross_entropy under autocast: the loss runs in float32
    return autocast::call(
        autocast::Op::kCrossEntropy,
        [&](const Tensor& logits, const Tensor& ids) {
          return vocab_parallel_cross_entropy(logits, ids, vocab_size, mesh, mesh_dim, reduction, ignore_index,
                                              label_smoothing);
        },
        local_logits, target);
  constexpr const char* op = "vocab_parallel_cross_entropy";
  check_vocab(vocab_size, mesh, mesh_dim, op);
  WEFT_CHECK(reduction == "none" || reduction == "mean" || reduction == "sum", op,
             ": reduction must be 'none', 'mean' or 'sum' but got '", reduction, "'");
  WEFT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1] but got ",
             label_smoothing);
  WEFT_CHECK(target.dtype() == kInt64, op, ": expected class-index targets (int64) but got ", target.dtype(),
             "; probability targets are not supported");
  auto [rows, offset] = vocab_shard(vocab_size, mesh, mesh_dim);
  WEFT_CHECK(local_logits.dim() >= 1 && local_logits.size(-1) == rows, op, ": expected this rank's ", rows,
             " logits of ", vocab_size, " in the last dim but got shape ", local_logits.shape());
  Shape rows_shape(local_logits.shape().begin(), local_logits.shape().end() - 1);
  WEFT_CHECK(target.shape() == rows_shape, op, ": expected target of shape ", rows_shape, " for logits of shape ",
             local_logits.shape(), " but got ", target.shape());
  dist::detail::check_collective_input(kCrossEntropyType, local_logits, mesh, mesh_dim);
  const int64_t n = target.numel();
  const DType dt = local_logits.dtype();
  Tensor logits = local_logits.reshape({n, rows});
  // Every target in range (or ignored) on every rank: each rank checks the same targets alike.
  LocalIds t = local_ids(target.reshape({n}), vocab_size, offset, rows, dt, op, "target", ignore_index);
  Tensor loss, lse;
  {
    NoGradGuard no_grad;
    // Per row, this rank's part: log-sum-exp of its columns (stable: its own max inside), the
    // target's logit where it is here, the sum of its logits (label smoothing). One all-gather.
    Tensor stats = zeros({1, 3, n}, dtype(kFloat64));
    if (rows > 0) {
      stats.select(1, 0).copy_(logsumexp(logits, {1}).to(kFloat64).reshape({1, n}));
      stats.select(1, 1).copy_(mul(squeeze(gather(logits, 1, unsqueeze(t.rows, 1)), 1), t.mine).to(kFloat64)
                                   .reshape({1, n}));
      if (label_smoothing > 0) stats.select(1, 2).copy_(sum(logits, 1).to(kFloat64).reshape({1, n}));
    } else {
      stats.select(1, 0).fill_(-std::numeric_limits<double>::infinity());
    }
    const int64_t k = mesh.size(mesh_dim);
    Tensor all = dist::detail::all_gather(stats, 0, std::vector<int64_t>(static_cast<size_t>(k), 1), mesh, mesh_dim);
    // lse = M + log sum_r exp(lse_r - M), M the largest lse_r: every term <= 1, at least one = 1.
    loss = empty({n}, dtype(dt));
    lse = empty({n}, dtype(dt));
    const double* a = all.data_ptr<double>();
    const int64_t* tgt = target.contiguous().data_ptr<int64_t>();
    const double eps = label_smoothing, v = static_cast<double>(vocab_size);
    visit_floating(dt, op, [&](auto tag) {
      using T = decltype(tag);
      T* out = loss.data_ptr<T>();
      T* out_lse = lse.data_ptr<T>();
      for (int64_t i = 0; i < n; ++i) {
        double m = -std::numeric_limits<double>::infinity(), s = 0.0, tl = 0.0, sx = 0.0;
        for (int64_t r = 0; r < k; ++r) m = std::max(m, a[(r * 3) * n + i]);
        for (int64_t r = 0; r < k; ++r) {
          s += std::exp(a[(r * 3) * n + i] - m);
          tl += a[(r * 3 + 1) * n + i];
          sx += a[(r * 3 + 2) * n + i];
        }
        const double l = m + std::log(s);
        out_lse[i] = static_cast<T>(l);
        // Ignored rows count zero (as cross_entropy); their gradient is zero through `counted` below.
        out[i] = tgt[i] == ignore_index ? T(0) : static_cast<T>(l - (1.0 - eps) * tl - eps / v * sx);
      }
    });
  }
  Tensor counted = ne(target.reshape({n}), ignore_index).to(dt);
  loss = autograd::record<VocabParallelCrossEntropyBackward>(std::move(loss), [&](VocabParallelCrossEntropyBackward& b) {
    b.save(b.logits, logits);
    b.lse = lse;
    b.target_rows = t.rows;
    b.mine = t.mine;
    b.label_smoothing = label_smoothing;
    b.vocab_size = vocab_size;
  }, logits);
  dist::detail::type_collective_output(kCrossEntropyType, loss, logits, mesh, mesh_dim);
  loss = mul(loss, counted);  // ignored rows: no gradient either
  if (reduction == "none") return loss.reshape(rows_shape);
  if (reduction == "sum") return sum(loss);
  return div(sum(loss), sum(counted));  // 0/0 = NaN when every target is ignored, as cross_entropy
}

Tensor vocab_parallel_cross_entropy(const dist::DTensor& logits, const Tensor& target, const std::string& reduction,
                                    int64_t ignore_index, double label_smoothing) {
  constexpr const char* op = "vocab_parallel_cross_entropy";
  WEFT_CHECK(logits.dim() >= 1, op, ": expected logits with a vocab dim but got shape ", logits.shape());
  const int64_t vocab_dim = logits.dim() - 1;
  const dist::Placements& placements = logits.placements();
  int64_t mesh_dim = -1;
  for (size_t d = 0; d < placements.size(); ++d)
    if (placements[d].is_shard(vocab_dim)) mesh_dim = static_cast<int64_t>(d);
  WEFT_CHECK(mesh_dim >= 0, op, ": expected logits sharded on their last (vocab) dim, Shard(", vocab_dim,
             ") on one mesh dim, but got placements ", dist::to_string(placements), " of shape ", logits.shape());
  for (size_t d = 0; d < placements.size(); ++d)
    WEFT_CHECK(!placements[d].is_partial(), op, ": expected logits without pending sums but got placements ",
               dist::to_string(placements), "; redistribute the Partial mesh dim first");
  return vocab_parallel_cross_entropy(logits.to_local(), target, logits.size(vocab_dim), logits.device_mesh(),
                                      mesh_dim, reduction, ignore_index, label_smoothing);
}

}  // namespace weft::nn::parallel
