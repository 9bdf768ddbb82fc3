// kernels/rnn.cpp: LSTM and linear-before-reset GRU layers on oneDNN's RNN primitives, cached per
// thread and geometry, with the weight reorders each primitive asks for.
#include "kernels/rnn.h"

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "kernels/onednn.h"
#include "kernels/toolkit.h"

namespace weft::kernels {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

memory::desc f32(const memory::dims& dims, Tag tag) { return memory::desc(dims, memory::data_type::f32, tag); }

// A layer's problem: the cell, T steps, N sequences, I inputs, H hidden units, D directions.
struct Geometry {
  RnnCell cell;
  int64_t T, N, I, H, D;
};

// The operands' descriptors in weft's (user) layouts; weights may be wanted in others.
struct Descs {
  memory::desc src_layer, iter, w_layer, w_iter, bias, dst_layer;
  explicit Descs(const Geometry& g) {
    const int64_t G = rnn_gates(g.cell);
    src_layer = f32({g.T, g.N, g.I}, Tag::tnc);
    iter = f32({1, g.D, g.N, g.H}, Tag::ldnc);
    w_layer = f32({1, g.D, g.I, G, g.H}, Tag::ldgoi);
    w_iter = f32({1, g.D, g.H, G, g.H}, Tag::ldgoi);
    bias = f32({1, g.D, rnn_bias_gates(g.cell), g.H}, Tag::ldgo);
    dst_layer = f32({g.T, g.N, g.D * g.H}, Tag::tnc);
  }
};

// A reorder from weft's layout of an operand to the one a primitive asked for, when they differ.
struct Conversion {
  memory::desc from, to;
  dnnl::primitive reorder;  // empty when from == to
  Conversion() = default;
  Conversion(const memory::desc& from_md, const memory::desc& to_md) : from(from_md), to(to_md) {
    if (from != to) reorder = dnnl::reorder(dnnl::reorder::primitive_desc(onednn::engine(), from, onednn::engine(), to));
  }
  // `data` in the `to` layout: itself, or a converted copy kept alive by `keep`.
  memory apply(void* data, Tensor& keep) const {
    memory src(from, onednn::engine(), data);
    if (!reorder) return src;
    keep = make_empty({static_cast<int64_t>((to.get_size() + 3) / 4)}, kFloat32);
    memory dst(to, onednn::engine(), keep.raw_data());
    reorder.execute(onednn::stream(), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    return dst;
  }
};

// One geometry's primitives; backward's are made on the first backward.
struct RnnPrimitives {
  Geometry g;
  Descs d;
  dnnl::lstm_forward::primitive_desc lstm_fwd_pd;
  dnnl::lbr_gru_forward::primitive_desc gru_fwd_pd;
  dnnl::primitive fwd, bwd;
  Conversion fwd_w_layer, fwd_w_iter, bwd_w_layer, bwd_w_iter, bwd_dw_layer, bwd_dw_iter;
  memory::desc workspace;

  explicit RnnPrimitives(const Geometry& geometry) : g(geometry), d(geometry) {
    auto any_w_layer = f32(d.w_layer.dims(), Tag::any), any_w_iter = f32(d.w_iter.dims(), Tag::any);
    const auto dir = direction();
    dnnl::primitive_desc_base* pd;
    if (g.cell == RnnCell::kLstm) {
      lstm_fwd_pd = {{dnnl::prop_kind::forward_training, dir, d.src_layer, d.iter, d.iter, any_w_layer, any_w_iter,
                      d.bias, d.dst_layer, d.iter, d.iter},
                     onednn::engine()};
      fwd = dnnl::lstm_forward(lstm_fwd_pd);
      pd = &lstm_fwd_pd;
    } else {
      gru_fwd_pd = {{dnnl::prop_kind::forward_training, dir, d.src_layer, d.iter, any_w_layer, any_w_iter, d.bias,
                     d.dst_layer, d.iter},
                    onednn::engine()};
      fwd = dnnl::lbr_gru_forward(gru_fwd_pd);
      pd = &gru_fwd_pd;
    }
    fwd_w_layer = Conversion(d.w_layer, pd->weights_desc(0));
    fwd_w_iter = Conversion(d.w_iter, pd->weights_desc(1));
    workspace = pd->workspace_desc();
  }

  dnnl::rnn_direction direction() const {
    return g.D == 2 ? dnnl::rnn_direction::bidirectional_concat : dnnl::rnn_direction::unidirectional_left2right;
  }

  void make_backward() {
    if (bwd) return;
    auto any_w_layer = f32(d.w_layer.dims(), Tag::any), any_w_iter = f32(d.w_iter.dims(), Tag::any);
    const auto dir = direction();
    dnnl::primitive_desc_base* pd;
    dnnl::lstm_backward::primitive_desc lstm_pd;
    dnnl::lbr_gru_backward::primitive_desc gru_pd;
    if (g.cell == RnnCell::kLstm) {
      lstm_pd = {{dnnl::prop_kind::backward, dir, d.src_layer, d.iter, d.iter, any_w_layer, any_w_iter, d.bias,
                  d.dst_layer, d.iter, d.iter, d.src_layer, d.iter, d.iter, any_w_layer, any_w_iter, d.bias,
                  d.dst_layer, d.iter, d.iter},
                 onednn::engine(), lstm_fwd_pd};
      bwd = dnnl::lstm_backward(lstm_pd);
      pd = &lstm_pd;
    } else {
      gru_pd = {{dnnl::prop_kind::backward, dir, d.src_layer, d.iter, any_w_layer, any_w_iter, d.bias, d.dst_layer,
                 d.iter, d.src_layer, d.iter, any_w_layer, any_w_iter, d.bias, d.dst_layer, d.iter},
                onednn::engine(), gru_fwd_pd};
      bwd = dnnl::lbr_gru_backward(gru_pd);
      pd = &gru_pd;
    }
    bwd_w_layer = Conversion(d.w_layer, pd->weights_desc(0));
    bwd_w_iter = Conversion(d.w_iter, pd->weights_desc(1));
    bwd_dw_layer = Conversion(pd->diff_weights_desc(0), d.w_layer);
    bwd_dw_iter = Conversion(pd->diff_weights_desc(1), d.w_iter);
  }
};

// The calling thread's primitives for `g` (see Note [Primitive cache] in kernels/onednn.h: the same
// reasoning, with an entry too large for a BoundPrimitive's argument slots).
RnnPrimitives& primitives_for(const Geometry& g) {
  thread_local std::unordered_map<size_t, std::vector<std::pair<onednn::PrimitiveKey, std::unique_ptr<RnnPrimitives>>>>
      cache;
  onednn::PrimitiveKey key(static_cast<int64_t>(g.cell));
  key.add({g.T, g.N, g.I, g.H, g.D});
  auto& bucket = cache[key.hash()];
  for (auto& [k, entry] : bucket)
    if (k == key) return *entry;
  ScopedNumThreads create_for(key.threads());  // oneDNN reads the count when it creates
  bucket.emplace_back(key, std::make_unique<RnnPrimitives>(g));
  return *bucket.back().second;
}

Geometry geometry_of(RnnCell cell, const Tensor& x, const Tensor& h0) {
  return {cell, x.size(0), x.size(1), x.size(2), h0.size(2), h0.size(0)};
}

memory wrap(const memory::desc& md, const Tensor& t) { return memory(md, onednn::engine(), t.raw_data()); }

}  // namespace

RnnForward rnn_forward(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w) {
  const Geometry g = geometry_of(cell, x, h0);
  RnnPrimitives& p = primitives_for(g);
  RnnForward out;
  out.y = make_empty({g.T, g.N, g.D * g.H}, kFloat32);
  out.h_n = make_empty({g.D, g.N, g.H}, kFloat32);
  if (cell == RnnCell::kLstm) out.c_n = make_empty({g.D, g.N, g.H}, kFloat32);
  out.workspace = make_empty({static_cast<int64_t>((p.workspace.get_size() + 3) / 4)}, kFloat32);
  Tensor keep_layer, keep_iter;
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC_LAYER, wrap(p.d.src_layer, x)},
      {DNNL_ARG_SRC_ITER, wrap(p.d.iter, h0)},
      {DNNL_ARG_WEIGHTS_LAYER, p.fwd_w_layer.apply(w.w_layer.raw_data(), keep_layer)},
      {DNNL_ARG_WEIGHTS_ITER, p.fwd_w_iter.apply(w.w_iter.raw_data(), keep_iter)},
      {DNNL_ARG_BIAS, wrap(p.d.bias, w.bias)},
      {DNNL_ARG_DST_LAYER, wrap(p.d.dst_layer, out.y)},
      {DNNL_ARG_DST_ITER, wrap(p.d.iter, out.h_n)},
      {DNNL_ARG_WORKSPACE, wrap(p.workspace, out.workspace)}};
  if (cell == RnnCell::kLstm) {
    args.emplace(DNNL_ARG_SRC_ITER_C, wrap(p.d.iter, c0));
    args.emplace(DNNL_ARG_DST_ITER_C, wrap(p.d.iter, out.c_n));
  }
  p.fwd.execute(onednn::stream(), args);
  onednn::stream().wait();
  return out;
}

RnnBackward rnn_backward(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w,
                         const RnnForward& fwd, const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n) {
  const Geometry g = geometry_of(cell, x, h0);
  RnnPrimitives& p = primitives_for(g);
  p.make_backward();
  const bool lstm = cell == RnnCell::kLstm;
  RnnBackward out;
  out.dx = make_empty(x.shape(), kFloat32);
  out.dh0 = make_empty(h0.shape(), kFloat32);
  if (lstm) out.dc0 = make_empty(h0.shape(), kFloat32);
  // oneDNN adds the weights' gradients into their buffers.
  auto zeroed = [](const memory::desc& md) {
    Tensor t = make_empty({static_cast<int64_t>((md.get_size() + 3) / 4)}, kFloat32);
    std::fill_n(static_cast<float*>(t.raw_data()), t.numel(), 0.0f);
    return t;
  };
  Tensor dw_layer = zeroed(p.bwd_dw_layer.from), dw_iter = zeroed(p.bwd_dw_iter.from);
  out.dw.bias = make_empty(w.bias.shape(), kFloat32);
  std::fill_n(static_cast<float*>(out.dw.bias.raw_data()), out.dw.bias.numel(), 0.0f);
  Tensor keep_layer, keep_iter;
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC_LAYER, wrap(p.d.src_layer, x)},
      {DNNL_ARG_SRC_ITER, wrap(p.d.iter, h0)},
      {DNNL_ARG_WEIGHTS_LAYER, p.bwd_w_layer.apply(w.w_layer.raw_data(), keep_layer)},
      {DNNL_ARG_WEIGHTS_ITER, p.bwd_w_iter.apply(w.w_iter.raw_data(), keep_iter)},
      {DNNL_ARG_BIAS, wrap(p.d.bias, w.bias)},
      {DNNL_ARG_DST_LAYER, wrap(p.d.dst_layer, fwd.y)},
      {DNNL_ARG_DST_ITER, wrap(p.d.iter, fwd.h_n)},
      {DNNL_ARG_WORKSPACE, wrap(p.workspace, fwd.workspace)},
      {DNNL_ARG_DIFF_SRC_LAYER, wrap(p.d.src_layer, out.dx)},
      {DNNL_ARG_DIFF_SRC_ITER, wrap(p.d.iter, out.dh0)},
      {DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(p.bwd_dw_layer.from, dw_layer)},
      {DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(p.bwd_dw_iter.from, dw_iter)},
      {DNNL_ARG_DIFF_BIAS, wrap(p.d.bias, out.dw.bias)},
      {DNNL_ARG_DIFF_DST_LAYER, wrap(p.d.dst_layer, dy)},
      {DNNL_ARG_DIFF_DST_ITER, wrap(p.d.iter, dh_n)}};
  if (lstm) {
    args.emplace(DNNL_ARG_SRC_ITER_C, wrap(p.d.iter, c0));
    args.emplace(DNNL_ARG_DST_ITER_C, wrap(p.d.iter, fwd.c_n));
    args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, wrap(p.d.iter, out.dc0));
    args.emplace(DNNL_ARG_DIFF_DST_ITER_C, wrap(p.d.iter, dc_n));
  }
  p.bwd.execute(onednn::stream(), args);
  // The weights' gradients in weft's layout.
  auto to_user = [&](const Conversion& c, const Tensor& got, const Tensor& like) {
    if (!c.reorder) return reshaped(got, like.shape());  // already ldgoi
    Tensor user = make_empty(like.shape(), kFloat32);
    memory src(c.from, onednn::engine(), got.raw_data()), dst(c.to, onednn::engine(), user.raw_data());
    c.reorder.execute(onednn::stream(), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    return user;
  };
  out.dw.w_layer = to_user(p.bwd_dw_layer, dw_layer, w.w_layer);
  out.dw.w_iter = to_user(p.bwd_dw_iter, dw_iter, w.w_iter);
  onednn::stream().wait();
  return out;
}

}  // namespace weft::kernels
