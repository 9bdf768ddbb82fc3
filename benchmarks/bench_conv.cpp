// bench_conv: conv2d forward + backward and batch_norm (training) forward + backward through weft
// (ops, autograd, the primitive cache) against the raw oneDNN primitives made once outside the
// timing loop, on ResNet layers: 64 -> 64 channels, 3x3, padding 1, at 56x56 (N = 4) and 28x28
// (N = 8). Both sides use NCHW / OIHW, the layouts weft's tensors have, so the ratio is what weft
// adds to the primitives it calls. Paired timing (Note [Paired timing] in bench_common.h).
#include <vector>

#include "bench_common.h"

namespace {

using dnnl::memory;
using Args = std::unordered_map<int, memory>;
using tag = memory::format_tag;

float* fp(const weft::Tensor& t) { return t.data_ptr<float>(); }

memory::desc nchw(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, tag::nchw);
}

void run(const dnnl::primitive& prim, const Args& args) { prim.execute(bench::raw_stream(), args); }

// conv2d(x, w, padding 1) and its gradients with respect to x and w, given dy.
void BM_conv2d_fwd_bwd(benchmark::State& state) {
  const int64_t n = state.range(0), hw = state.range(1), c = 64;
  bench::set_threads(static_cast<int>(state.range(2)));
  weft::Tensor x = weft::randn({n, c, hw, hw}, weft::requires_grad()), w = weft::randn({c, c, 3, 3}, weft::requires_grad());
  weft::Tensor dy = weft::randn({n, c, hw, hw});
  weft::Tensor y = weft::empty({n, c, hw, hw}), dx = weft::empty({n, c, hw, hw}), dw = weft::empty({c, c, 3, 3});
  auto& eng = bench::raw_engine();
  auto x_md = nchw(n, c, hw, hw), y_md = nchw(n, c, hw, hw);
  auto w_md = memory::desc({c, c, 3, 3}, memory::data_type::f32, tag::oihw);
  const memory::dims strides{1, 1}, dilates{0, 0}, pad{1, 1};
  using namespace dnnl;
  convolution_forward::primitive_desc fwd_pd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, x_md, w_md, y_md, strides,
                                dilates, pad, pad),
      eng);
  convolution_backward_data::primitive_desc bwd_data_pd(
      convolution_backward_data::desc(algorithm::convolution_direct, x_md, w_md, y_md, strides, dilates, pad, pad), eng,
      fwd_pd);
  convolution_backward_weights::primitive_desc bwd_w_pd(
      convolution_backward_weights::desc(algorithm::convolution_direct, x_md, w_md, y_md, strides, dilates, pad, pad),
      eng, fwd_pd);
  convolution_forward fwd(fwd_pd);
  convolution_backward_data bwd_data(bwd_data_pd);
  convolution_backward_weights bwd_w(bwd_w_pd);
  memory xm(x_md, eng, fp(x)), wm(w_md, eng, fp(w)), ym(y_md, eng, fp(y)), dym(y_md, eng, fp(dy));
  memory dxm(x_md, eng, fp(dx)), dwm(w_md, eng, fp(dw));
  Args fwd_args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
  Args data_args{{DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dxm}};
  Args w_args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_WEIGHTS, wm}};
  w_args[DNNL_ARG_DIFF_WEIGHTS] = dwm;
  bench::paired(
      state,
      [&] {
        run(fwd, fwd_args);
        run(bwd_data, data_args);
        run(bwd_w, w_args);
        bench::raw_stream().wait();
      },
      [&] {
        weft::Tensor out = weft::conv2d(x, w, weft::Tensor(), 1, 1);
        auto grads = weft::autograd::grad({out}, {x, w}, {dy});
        benchmark::DoNotOptimize(grads[1].raw_data());
      });
  const double flops = 3 * 2.0 * n * c * c * 9 * hw * hw;
  state.counters["GFLOPs"] = flops / (state.counters["weft_us"] * 1e3);
  state.counters["GFLOPs_onednn"] = flops / (state.counters["baseline_us"] * 1e3);
}
BENCHMARK(BM_conv2d_fwd_bwd)->ArgNames({"n", "hw", "threads"})->Args({4, 56, 1})->Args({4, 56, 2})
    ->Args({8, 28, 1})->Args({8, 28, 2})->UseManualTime()->Unit(benchmark::kMicrosecond);

// batch_norm in training (batch statistics, affine) and its gradients with respect to x, weight and bias.
void BM_batch_norm_fwd_bwd(benchmark::State& state) {
  const int64_t n = state.range(0), hw = state.range(1), c = 64;
  bench::set_threads(static_cast<int>(state.range(2)));
  weft::Tensor x = weft::randn({n, c, hw, hw}, weft::requires_grad()), dy = weft::randn({n, c, hw, hw});
  weft::Tensor scale = weft::ones({c}, weft::requires_grad()), shift = weft::zeros({c}, weft::requires_grad());
  weft::Tensor y = weft::empty({n, c, hw, hw}), dx = weft::empty({n, c, hw, hw});
  weft::Tensor mean = weft::empty({c}), var = weft::empty({c}), dscale = weft::empty({c}), dshift = weft::empty({c});
  auto& eng = bench::raw_engine();
  auto md = nchw(n, c, hw, hw), c_md = memory::desc({c}, memory::data_type::f32, tag::x);
  using namespace dnnl;
  const auto flags = normalization_flags::use_scale | normalization_flags::use_shift;
  batch_normalization_forward::primitive_desc fwd_pd(
      batch_normalization_forward::desc(prop_kind::forward_training, md, 1e-5f, flags), eng);
  batch_normalization_backward::primitive_desc bwd_pd(
      batch_normalization_backward::desc(prop_kind::backward, md, md, 1e-5f, flags), eng, fwd_pd);
  batch_normalization_forward fwd(fwd_pd);
  batch_normalization_backward bwd(bwd_pd);
  memory xm(md, eng, fp(x)), ym(md, eng, fp(y)), dym(md, eng, fp(dy)), dxm(md, eng, fp(dx));
  memory sm(c_md, eng, fp(scale)), hm(c_md, eng, fp(shift)), mm(c_md, eng, fp(mean)), vm(c_md, eng, fp(var));
  memory dsm(c_md, eng, fp(dscale)), dhm(c_md, eng, fp(dshift));
  Args fwd_args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}, {DNNL_ARG_SCALE, sm}, {DNNL_ARG_SHIFT, hm},
                {DNNL_ARG_MEAN, mm}, {DNNL_ARG_VARIANCE, vm}};
  Args bwd_args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_SCALE, sm}, {DNNL_ARG_SHIFT, hm}, {DNNL_ARG_MEAN, mm},
                {DNNL_ARG_VARIANCE, vm}, {DNNL_ARG_DIFF_SRC, dxm}, {DNNL_ARG_DIFF_SCALE, dsm},
                {DNNL_ARG_DIFF_SHIFT, dhm}};
  bench::paired(
      state,
      [&] {
        run(fwd, fwd_args);
        run(bwd, bwd_args);
        bench::raw_stream().wait();
      },
      [&] {
        weft::Tensor out = weft::batch_norm(x, weft::Tensor(), weft::Tensor(), scale, shift, true);
        auto grads = weft::autograd::grad({out}, {x, scale, shift}, {dy});
        benchmark::DoNotOptimize(grads[0].raw_data());
      });
}
BENCHMARK(BM_batch_norm_fwd_bwd)->ArgNames({"n", "hw", "threads"})->Args({4, 56, 1})->Args({4, 56, 2})
    ->Args({8, 28, 1})->Args({8, 28, 2})->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
