// nn normalization layers: BatchNorm (local or synchronized over data-parallel ranks) and GroupNorm.
#include "nn/batch_norm.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "kernels/batch_norm.h"
#include "ops/ops.h"

namespace weft::nn {

BatchNorm::BatchNorm(std::string name, std::vector<int64_t> ranks, int64_t n, double eps_, double momentum_,
                     bool affine_, bool track)
    : UnaryModule(std::move(name)),
      num_features(n),
      eps(eps_),
      momentum(momentum_),
      affine(affine_),
      track_running_stats(track),
      weight(register_parameter("weight", affine_ ? ones({n}) : Tensor())),
      bias(register_parameter("bias", affine_ ? zeros({n}) : Tensor())),
      running_mean(register_buffer("running_mean", track ? zeros({n}) : Tensor())),
      running_var(register_buffer("running_var", track ? ones({n}) : Tensor())),
      num_batches_tracked(register_buffer("num_batches_tracked", track ? zeros({}, dtype(kInt64)) : Tensor())),
      ranks_(std::move(ranks)) {
  WEFT_CHECK(n > 0, type_name(), ": expected a positive num_features but got ", n);
}

Tensor BatchNorm::forward(const Tensor& x) {
  weft::detail::check_plain(x, type_name().c_str());
  WEFT_CHECK(std::find(ranks_.begin(), ranks_.end(), x.dim()) != ranks_.end(), type_name(), ": expected a ",
             ranks_.size() == 1 ? "4-D input [N, C, H, W]" : "2-D or 3-D input [N, C(, L)]", " but got shape ",
             x.shape());
  const bool batch_stats = is_training() || !running_mean.defined();
  if (is_training() && running_mean.defined()) {
    NoGradGuard no_grad;
    num_batches_tracked.data_ptr<int64_t>()[0] += 1;
    num_batches_tracked.bump_version();
  }
  if (batch_stats && sum_over_replicas) return synchronized(x);
  return batch_norm(x, running_mean, running_var, weight, bias, batch_stats, momentum, eps);
}

// batch_norm written with ops, its sums taken over the replicas: the gradient of each statistic
// reaches every rank's inputs through the all-reduce's backward.
Tensor BatchNorm::synchronized(const Tensor& x) {
  Shape dims{0}, channel(static_cast<size_t>(x.dim()), 1);
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  channel[1] = x.size(1);
  const double local = static_cast<double>(x.numel() / std::max<int64_t>(x.size(1), 1));
  const double count = sum_over_replicas(full({1}, local, dtype(kFloat64))).item<double>();
  WEFT_CHECK(count > 1, type_name(), ": expected more than 1 value per channel when training, but the global batch "
             "has ", count);
  Tensor mean = div(sum_over_replicas(sum(x, dims)), count);
  Tensor centred = sub(x, reshape(mean, channel));
  Tensor var = div(sum_over_replicas(sum(mul(centred, centred), dims)), count);
  Tensor y = mul(centred, reshape(rsqrt(add(var, eps)), channel));
  if (is_training() && running_mean.defined()) {
    NoGradGuard no_grad;
    kernels::batch_norm_update_running(running_mean, running_var, mean.detach(), var.detach(), momentum,
                                       static_cast<int64_t>(count));
  }
  if (weight.defined()) y = mul(y, reshape(weight, channel));
  return bias.defined() ? add(y, reshape(bias, channel)) : y;
}

std::string BatchNorm::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + std::to_string(eps) + ", momentum=" + std::to_string(momentum) +
         ", affine=" + (affine ? "true" : "false") + ", track_running_stats=" + (track_running_stats ? "true" : "false");
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine)
    : UnaryModule("GroupNorm"),
      num_groups(groups),
      num_channels(channels),
      eps(eps_),
      weight(register_parameter("weight", affine ? ones({channels}) : Tensor())),
      bias(register_parameter("bias", affine ? zeros({channels}) : Tensor())) {
  WEFT_CHECK(groups > 0 && channels > 0 && channels % groups == 0, "GroupNorm: expected num_groups (", groups,
             ") to be positive and to divide num_channels (", channels, ")");
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, num_groups, weight, bias, eps); }

std::string GroupNorm::extra_repr() const {
  return std::to_string(num_groups) + ", " + std::to_string(num_channels) + ", eps=" + std::to_string(eps) +
         ", affine=" + (weight.defined() ? "true" : "false");
}

}  // namespace weft::nn
