// train_mlp: single-process regression with a 2-layer MLP and AdamW on minibatches of synthetic data
// from a DataLoader; the demo's proof that weft learns. Exits non-zero unless the loss falls at least
// 5x (in runs of kLearningSteps steps or more; shorter ones only have to run). --in-backward runs
// AdamW's update inside backward, each parameter's as soon as its gradient is complete
// (optim::apply_in_backward), instead of zero_grad / clip_grad_norm_ / step after it: no gradient
// clipping then, since no step sees every gradient at once.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "weft.h"

using namespace weft;

namespace {

constexpr int64_t kSamples = 512, kIn = 4, kHidden = 64, kOut = 2, kBatch = 128;
constexpr int kLearningSteps = 150;

// y = [sin(x0 + x1) + 0.5 x2 x3, cos(x0) - x1^2 / 2 + tanh(x3)] + 0.05 noise: smooth, nonlinear,
// and it mixes the inputs, so a linear model cannot fit it but a small MLP can.
void make_data(Tensor& x, Tensor& y, uint64_t seed) {
  Generator gen(seed);
  x = empty({kSamples, kIn});
  y = empty({kSamples, kOut});
  float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t i = 0; i < kSamples; ++i) {
    double v[kIn];
    for (int64_t j = 0; j < kIn; ++j) xp[i * kIn + j] = static_cast<float>(v[j] = 2.0 * gen.uniform() - 1.0);
    yp[i * kOut + 0] = static_cast<float>(std::sin(v[0] + v[1]) + 0.5 * v[2] * v[3] + 0.05 * gen.normal());
    yp[i * kOut + 1] = static_cast<float>(std::cos(v[0]) - 0.5 * v[1] * v[1] + std::tanh(v[3]) + 0.05 * gen.normal());
  }
}

int arg_int(int argc, char** argv, const std::string& flag, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == flag) return std::atoi(argv[i + 1]);
  return fallback;
}

bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == flag) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = arg_int(argc, argv, "--steps", 300);
  const int log_every = arg_int(argc, argv, "--log-every", 50);
  // One thread by default: the problem is small, and on a busy machine OpenMP barriers between
  // two threads cost far more than they save here.
  set_num_threads(arg_int(argc, argv, "--threads", 1));
  const bool in_backward = has_flag(argc, argv, "--in-backward");
  manual_seed(0);

  Tensor x, y;
  make_data(x, y, /*seed=*/1234);

  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(kIn, kHidden), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(kHidden, kOut)});
  std::cout << *model << std::endl;

  nn::MSELoss criterion;
  optim::AdamW optimizer(model->parameters(), {.lr = 1e-2, .weight_decay = 1e-4});
  optim::CosineWarmupSchedule schedule(1e-2, steps / 20, steps, 1e-4);
  std::optional<optim::OptimizerInBackward> fused;  // the step in backward, with --in-backward
  if (in_backward) fused.emplace(optim::apply_in_backward(optimizer));

  data::DataLoader loader(std::make_shared<data::TensorDataset>(std::vector<Tensor>{x, y}),
                          {.batch_size = kBatch, .shuffle = true, .drop_last = true});
  nn::Progress progress(steps, {.label = "train", .log_every = log_every});
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  double first_loss = 0.0;
  for (int step = 0; step < steps;) {
    for (const data::Batch& batch : loader) {
      if (step == steps) break;
      schedule.apply(optimizer, step);
      char note[64];
      Tensor loss;
      if (in_backward) {
        loss = criterion(model->forward(batch[0]), batch[1]);
        loss.backward();  // every parameter updated as its gradient completed, the gradients released
        std::snprintf(note, sizeof note, "step in backward, lr %.2e", optimizer.lr());
      } else {
        optimizer.zero_grad();
        loss = criterion(model->forward(batch[0]), batch[1]);
        loss.backward();
        double norm = optim::clip_grad_norm_(model->parameters(), 1.0);
        optimizer.step();
        std::snprintf(note, sizeof note, "grad_norm %.4f lr %.2e", norm, optimizer.lr());
      }
      if (step == 0) first_loss = loss.item<double>();
      progress.update(step++, loss.item<double>(), note);
    }
  }
  progress.finish();

  double final_loss;
  {
    NoGradGuard no_grad;
    final_loss = criterion(model->forward(x), y).item<double>();
  }
  double ratio = first_loss / final_loss;
  std::printf("final loss %.5f (initial %.5f, %.1fx lower) in %.2fs\n", final_loss, first_loss, ratio, elapsed());
  if (steps < kLearningSteps) {
    std::printf("OK: it ran (runs of %d steps or more must lower the loss 5x)\n", kLearningSteps);
    return 0;
  }
  if (!(ratio >= 5.0)) {
    std::printf("FAILED: the loss fell less than 5x\n");
    return 1;
  }
  std::printf("OK: the model learned\n");
  return 0;
}
