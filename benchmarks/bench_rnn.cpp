// bench_rnn: weft's lstm forward + backward against the raw oneDNN LSTM primitives (forward for
// training, then backward) made once outside the timing loop, with weights already in the layouts
// the primitives asked for. Paired (Note [Paired timing] in bench_common.h).
#include <cstring>

#include "bench_common.h"

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

memory::desc f32(const memory::dims& dims, Tag tag) { return memory::desc(dims, memory::data_type::f32, tag); }

// A raw primitive's buffer of `md`'s size, made once.
struct Buffer {
  std::vector<float> data;
  memory mem;
  explicit Buffer(const memory::desc& md) : data((md.get_size() + 3) / 4, 0.01f), mem(md, bench::raw_engine(), data.data()) {}
};

// One LSTM layer, T steps of N sequences, I = H = `size`, one direction: forward then backward.
void BM_lstm_layer(benchmark::State& state) {
  const int64_t T = state.range(0), N = state.range(1), H = state.range(2), I = H;
  bench::set_threads(static_cast<int>(state.range(3)));
  auto& eng = bench::raw_engine();
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  auto src = f32({T, N, I}, Tag::tnc), iter = f32({1, 1, N, H}, Tag::ldnc), dst = f32({T, N, H}, Tag::tnc);
  auto any_wl = f32({1, 1, I, 4, H}, Tag::any), any_wi = f32({1, 1, H, 4, H}, Tag::any);
  auto bias = f32({1, 1, 4, H}, Tag::ldgo);
  dnnl::lstm_forward::primitive_desc fwd_pd({dnnl::prop_kind::forward_training, dir, src, iter, iter, any_wl, any_wi,
                                             bias, dst, iter, iter},
                                            eng);
  dnnl::lstm_backward::primitive_desc bwd_pd({dnnl::prop_kind::backward, dir, src, iter, iter, any_wl, any_wi, bias,
                                              dst, iter, iter, src, iter, iter, any_wl, any_wi, bias, dst, iter, iter},
                                             eng, fwd_pd);
  dnnl::lstm_forward fwd(fwd_pd);
  dnnl::lstm_backward bwd(bwd_pd);
  Buffer x(src), h0(iter), c0(iter), wl_f(fwd_pd.weights_desc(0)), wi_f(fwd_pd.weights_desc(1)), b(bias), y(dst),
      hn(iter), cn(iter), ws(fwd_pd.workspace_desc()), wl_b(bwd_pd.weights_desc(0)), wi_b(bwd_pd.weights_desc(1)),
      dx(src), dh0(iter), dc0(iter), dwl(bwd_pd.diff_weights_desc(0)), dwi(bwd_pd.diff_weights_desc(1)), db(bias),
      dy(dst), dhn(iter), dcn(iter);
  std::unordered_map<int, memory> fwd_args = {
      {DNNL_ARG_SRC_LAYER, x.mem}, {DNNL_ARG_SRC_ITER, h0.mem}, {DNNL_ARG_SRC_ITER_C, c0.mem},
      {DNNL_ARG_WEIGHTS_LAYER, wl_f.mem}, {DNNL_ARG_WEIGHTS_ITER, wi_f.mem}, {DNNL_ARG_BIAS, b.mem},
      {DNNL_ARG_DST_LAYER, y.mem}, {DNNL_ARG_DST_ITER, hn.mem}, {DNNL_ARG_DST_ITER_C, cn.mem},
      {DNNL_ARG_WORKSPACE, ws.mem}};
  std::unordered_map<int, memory> bwd_args = fwd_args;
  bwd_args[DNNL_ARG_WEIGHTS_LAYER] = wl_b.mem;
  bwd_args[DNNL_ARG_WEIGHTS_ITER] = wi_b.mem;
  for (auto [arg, buf] : {std::pair{DNNL_ARG_DIFF_SRC_LAYER, &dx}, {DNNL_ARG_DIFF_SRC_ITER, &dh0},
                          {DNNL_ARG_DIFF_SRC_ITER_C, &dc0}, {DNNL_ARG_DIFF_WEIGHTS_LAYER, &dwl},
                          {DNNL_ARG_DIFF_WEIGHTS_ITER, &dwi}, {DNNL_ARG_DIFF_BIAS, &db},
                          {DNNL_ARG_DIFF_DST_LAYER, &dy}, {DNNL_ARG_DIFF_DST_ITER, &dhn},
                          {DNNL_ARG_DIFF_DST_ITER_C, &dcn}})
    bwd_args.emplace(arg, buf->mem);
  auto raw = [&] {
    fwd.execute(bench::raw_stream(), fwd_args);
    // oneDNN adds into the weights' gradients: they start at zero each step, as weft's do.
    for (Buffer* g : {&dwl, &dwi, &db}) std::memset(g->data.data(), 0, g->data.size() * sizeof(float));
    bwd.execute(bench::raw_stream(), bwd_args);
    bench::raw_stream().wait();
  };

  weft::Tensor input = weft::randn({T, N, I}).requires_grad_();
  weft::TensorList params;
  for (weft::Shape s : {weft::Shape{4 * H, I}, weft::Shape{4 * H, H}, weft::Shape{4 * H}, weft::Shape{4 * H}})
    params.push_back((weft::randn(s) * 0.1).detach().requires_grad_());
  weft::Tensor grad_y = weft::randn({T, N, H});
  auto ours = [&] {
    input.set_grad(weft::Tensor());
    for (const weft::Tensor& p : params) p.set_grad(weft::Tensor());
    auto [out, h_n, c_n] = weft::lstm(input, {}, params, true, 1, 0.0, true, false, false);
    out.backward(grad_y);
    benchmark::DoNotOptimize(params[0].grad().raw_data());
  };
  bench::paired(state, raw, ours);
  const double flops = 3.0 * 2.0 * T * N * (I + H) * 4 * H;  // forward, and backward's two products
  state.counters["GFLOPs"] = flops / (state.counters["weft_us"] * 1e3);
}
BENCHMARK(BM_lstm_layer)->ArgNames({"T", "N", "H", "threads"})
    ->Args({50, 32, 256, 1})->Args({50, 32, 256, 2})->Args({20, 16, 128, 1})->Args({100, 64, 512, 2})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
