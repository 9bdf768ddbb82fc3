// conv.cpp: 2-D convolution kernels: cached oneDNN primitives for float32 (forward, backward-data,
// backward-weights, in plain NCHW / OIHW layouts) and reference loops for float64 and empty shapes.
#include "kernels/conv.h"

#include <algorithm>

#include "kernels/onednn.h"
#include "kernels/toolkit.h"
#include "kernels/threads.h"

namespace weft::kernels {
namespace {

// The extents of one convolution: x [n, c, h, w], weight [oc, c / groups, kh, kw], y [n, oc, oh, ow].
struct ConvDims {
  int64_t n, c, h, w, oc, kh, kw, oh, ow, groups;
  int64_t cg() const { return c / groups; }
  int64_t ocg() const { return oc / groups; }
};

ConvDims dims_of(const Shape& x, const Shape& weight, const ConvGeometry& g) {
  return {x[0],
          x[1],
          x[2],
          x[3],
          weight[0],
          weight[2],
          weight[3],
          conv_output_size(x[2], weight[2], g.stride[0], g.pad_before[0] + g.pad_after[0], g.dilation[0]),
          conv_output_size(x[3], weight[3], g.stride[1], g.pad_before[1] + g.pad_after[1], g.dilation[1]),
          g.groups};
}

// --- reference loops ----------------------------------------------------------------------------

// Calls f(ih, iw, kh, kw) for every kernel tap of output (oh, ow) that lands inside the input.
template <class F>
void for_each_tap(const ConvDims& d, const ConvGeometry& g, int64_t oh, int64_t ow, F&& f) {
  for (int64_t kh = 0; kh < d.kh; ++kh) {
    const int64_t ih = oh * g.stride[0] - g.pad_before[0] + kh * g.dilation[0];
    if (ih < 0 || ih >= d.h) continue;
    for (int64_t kw = 0; kw < d.kw; ++kw) {
      const int64_t iw = ow * g.stride[1] - g.pad_before[1] + kw * g.dilation[1];
      if (iw >= 0 && iw < d.w) f(ih, iw, kh, kw);
    }
  }
}

template <class T>
void forward_loop(const T* x, const T* w, const T* bias, T* y, const ConvDims& d, const ConvGeometry& g) {
#pragma omp parallel for schedule(static) if (d.n * d.oc * d.oh * d.ow * d.cg() * d.kh * d.kw > (1 << 16)) num_threads(get_num_threads())
  for (int64_t no = 0; no < d.n * d.oc; ++no) {
    const int64_t n = no / d.oc, oc = no % d.oc, c0 = oc / d.ocg() * d.cg();
    for (int64_t oh = 0; oh < d.oh; ++oh)
      for (int64_t ow = 0; ow < d.ow; ++ow) {
        T acc = bias ? bias[oc] : T(0);
        for (int64_t c = 0; c < d.cg(); ++c) {
          const T* xc = x + ((n * d.c + c0 + c) * d.h) * d.w;
          const T* wc = w + (oc * d.cg() + c) * d.kh * d.kw;
          for_each_tap(d, g, oh, ow, [&](int64_t ih, int64_t iw, int64_t kh, int64_t kw) {
            acc += xc[ih * d.w + iw] * wc[kh * d.kw + kw];
          });
        }
        y[(no * d.oh + oh) * d.ow + ow] = acc;
      }
  }
}

// dx scattered from dy, one (image, group) per iteration so that no two iterations write one element.
template <class T>
void backward_data_loop(const T* dy, const T* w, T* dx, const ConvDims& d, const ConvGeometry& g) {
  std::fill_n(dx, d.n * d.c * d.h * d.w, T(0));
#pragma omp parallel for schedule(static) if (d.n * d.oc * d.oh * d.ow * d.cg() * d.kh * d.kw > (1 << 16)) num_threads(get_num_threads())
  for (int64_t ng = 0; ng < d.n * d.groups; ++ng) {
    const int64_t n = ng / d.groups, grp = ng % d.groups;
    for (int64_t oc = grp * d.ocg(); oc < (grp + 1) * d.ocg(); ++oc)
      for (int64_t oh = 0; oh < d.oh; ++oh)
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const T gy = dy[((n * d.oc + oc) * d.oh + oh) * d.ow + ow];
          for (int64_t c = 0; c < d.cg(); ++c) {
            T* xc = dx + ((n * d.c + grp * d.cg() + c) * d.h) * d.w;
            const T* wc = w + (oc * d.cg() + c) * d.kh * d.kw;
            for_each_tap(d, g, oh, ow, [&](int64_t ih, int64_t iw, int64_t kh, int64_t kw) {
              xc[ih * d.w + iw] += gy * wc[kh * d.kw + kw];
            });
          }
        }
  }
}

template <class T>
void backward_weights_loop(const T* dy, const T* x, T* dw, T* dbias, const ConvDims& d, const ConvGeometry& g) {
  std::fill_n(dw, d.oc * d.cg() * d.kh * d.kw, T(0));
#pragma omp parallel for schedule(static) if (d.n * d.oc * d.oh * d.ow * d.cg() * d.kh * d.kw > (1 << 16)) num_threads(get_num_threads())
  for (int64_t oc = 0; oc < d.oc; ++oc) {
    const int64_t c0 = oc / d.ocg() * d.cg();
    T bias_acc = T(0);
    for (int64_t n = 0; n < d.n; ++n)
      for (int64_t oh = 0; oh < d.oh; ++oh)
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const T gy = dy[((n * d.oc + oc) * d.oh + oh) * d.ow + ow];
          bias_acc += gy;
          for (int64_t c = 0; c < d.cg(); ++c) {
            const T* xc = x + ((n * d.c + c0 + c) * d.h) * d.w;
            T* wc = dw + (oc * d.cg() + c) * d.kh * d.kw;
            for_each_tap(d, g, oh, ow, [&](int64_t ih, int64_t iw, int64_t kh, int64_t kw) {
              wc[kh * d.kw + kw] += gy * xc[ih * d.w + iw];
            });
          }
        }
    if (dbias) dbias[oc] = bias_acc;
  }
}

// --- oneDNN -------------------------------------------------------------------------------------

// Below this many multiply-adds a convolution primitive runs on one thread (Note [Serial
// primitives]); the matmul threshold, which the im2col + gemm that oneDNN runs on plain layouts
// resembles.
constexpr int64_t kSerialConvWork = int64_t(3) << 17;

int64_t conv_work(const ConvDims& d) { return d.n * d.oc * d.oh * d.ow * d.cg() * d.kh * d.kw; }

// The descriptors of one convolution in weft's layouts: NCHW activations, OIHW weights (GOIHW with
// groups, the same bytes), so that a primitive reads and writes weft's buffers without reorders.
struct ConvDescs {
  dnnl::memory::desc x, w, bias, y;
  dnnl::memory::dims strides, dilates, pad_l, pad_r;
};

ConvDescs descs_of(const ConvDims& d, const ConvGeometry& g) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  ConvDescs s;
  s.x = dnnl::memory::desc({d.n, d.c, d.h, d.w}, dt::f32, tag::nchw);
  s.y = dnnl::memory::desc({d.n, d.oc, d.oh, d.ow}, dt::f32, tag::nchw);
  s.w = d.groups == 1 ? dnnl::memory::desc({d.oc, d.cg(), d.kh, d.kw}, dt::f32, tag::oihw)
                      : dnnl::memory::desc({d.groups, d.ocg(), d.cg(), d.kh, d.kw}, dt::f32, tag::goihw);
  s.bias = dnnl::memory::desc({d.oc}, dt::f32, tag::x);
  s.strides = {g.stride[0], g.stride[1]};
  s.dilates = {g.dilation[0] - 1, g.dilation[1] - 1};  // oneDNN counts the gaps between taps
  s.pad_l = {g.pad_before[0], g.pad_before[1]};
  s.pad_r = {g.pad_after[0], g.pad_after[1]};
  return s;
}

// The forward primitive descriptor: the forward itself, and the hint both backward ones need.
dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& s, bool bias) {
  using namespace dnnl;
  auto desc = bias ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, s.x, s.w,
                                               s.bias, s.y, s.strides, s.dilates, s.pad_l, s.pad_r)
                   : convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, s.x, s.w,
                                               s.y, s.strides, s.dilates, s.pad_l, s.pad_r);
  return convolution_forward::primitive_desc(desc, onednn::engine());
}

onednn::PrimitiveKey conv_key(onednn::OpKind kind, const ConvDims& d, const ConvGeometry& g, bool bias) {
  onednn::PrimitiveKey key(kind, onednn::threads_for(conv_work(d), kSerialConvWork));
  key.add({d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, d.groups, bias ? 1 : 0});
  key.add({g.stride[0], g.stride[1], g.pad_before[0], g.pad_before[1], g.pad_after[0], g.pad_after[1],
           g.dilation[0], g.dilation[1]});
  return key;
}

void* data(const Tensor& t) { return t.raw_data(); }

Tensor onednn_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvDims& d, const ConvGeometry& g) {
  Tensor y = make_empty({d.n, d.oc, d.oh, d.ow}, kFloat32);
  const bool with_bias = bias.defined();
  auto& prim = onednn::get_primitive(conv_key(onednn::kConvForward, d, g, with_bias), [&] {
    ConvDescs s = descs_of(d, g);
    onednn::PrimitiveSpec spec{dnnl::convolution_forward(forward_pd(s, with_bias)),
                               {{DNNL_ARG_SRC, s.x}, {DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_DST, s.y}}};
    if (with_bias) spec.args.emplace_back(DNNL_ARG_BIAS, s.bias);
    return spec;
  });
  if (with_bias) prim.run({data(x), data(w), data(y), data(bias)});
  else prim.run({data(x), data(w), data(y)});
  return y;
}

Tensor onednn_backward_data(const Tensor& dy, const Tensor& w, const ConvDims& d, const ConvGeometry& g) {
  Tensor dx = make_empty({d.n, d.c, d.h, d.w}, kFloat32);
  auto& prim = onednn::get_primitive(conv_key(onednn::kConvBackwardData, d, g, false), [&] {
    using namespace dnnl;
    ConvDescs s = descs_of(d, g);
    convolution_backward_data::desc desc(algorithm::convolution_direct, s.x, s.w, s.y, s.strides, s.dilates, s.pad_l,
                                         s.pad_r);
    convolution_backward_data::primitive_desc pd(desc, onednn::engine(), forward_pd(s, false));
    return onednn::PrimitiveSpec{convolution_backward_data(pd),
                                 {{DNNL_ARG_DIFF_DST, s.y}, {DNNL_ARG_WEIGHTS, s.w}, {DNNL_ARG_DIFF_SRC, s.x}}};
  });
  prim.run({data(dy), data(w), data(dx)});
  return dx;
}

ConvWeightGrads onednn_backward_weights(const Tensor& dy, const Tensor& x, const ConvDims& d, const ConvGeometry& g,
                                        bool want_bias) {
  ConvWeightGrads out{make_empty({d.oc, d.cg(), d.kh, d.kw}, kFloat32),
                      want_bias ? make_empty({d.oc}, kFloat32) : Tensor()};
  auto& prim = onednn::get_primitive(conv_key(onednn::kConvBackwardWeights, d, g, want_bias), [&] {
    using namespace dnnl;
    ConvDescs s = descs_of(d, g);
    auto desc = want_bias ? convolution_backward_weights::desc(algorithm::convolution_direct, s.x, s.w, s.bias, s.y,
                                                               s.strides, s.dilates, s.pad_l, s.pad_r)
                          : convolution_backward_weights::desc(algorithm::convolution_direct, s.x, s.w, s.y,
                                                               s.strides, s.dilates, s.pad_l, s.pad_r);
    convolution_backward_weights::primitive_desc pd(desc, onednn::engine(), forward_pd(s, want_bias));
    onednn::PrimitiveSpec spec{convolution_backward_weights(pd),
                               {{DNNL_ARG_SRC, s.x}, {DNNL_ARG_DIFF_DST, s.y}, {DNNL_ARG_DIFF_WEIGHTS, s.w}}};
    if (want_bias) spec.args.emplace_back(DNNL_ARG_DIFF_BIAS, s.bias);
    return spec;
  });
  if (want_bias) prim.run({data(x), data(dy), data(out.dw), data(out.dbias)});
  else prim.run({data(x), data(dy), data(out.dw)});
  return out;
}

// oneDNN takes float32 problems with no empty extent and no negative padding (conv_transpose2d's
// output_padding at or above the stride); everything else runs the reference loops.
bool on_onednn(DType dtype, const ConvDims& d, const ConvGeometry& g) {
  return dtype == kFloat32 && g.pad_after[0] >= 0 && g.pad_after[1] >= 0 && d.n > 0 && d.c > 0 && d.oc > 0 &&
         d.oh > 0 && d.ow > 0 && d.h > 0 && d.w > 0;
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g) {
  const ConvDims d = dims_of(x.shape(), w.shape(), g);
  Tensor xd = dense(x), wd = dense(w), bd = bias.defined() ? dense(bias) : Tensor();
  if (on_onednn(x.dtype(), d, g)) return onednn_forward(xd, wd, bd, d, g);
  Tensor y = make_empty({d.n, d.oc, d.oh, d.ow}, x.dtype());
  visit_floating(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    forward_loop<T>(xd.data_ptr<T>(), wd.data_ptr<T>(), bd.defined() ? bd.data_ptr<T>() : nullptr, y.data_ptr<T>(),
                    d, g);
  });
  return y;
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const ConvGeometry& g) {
  const ConvDims d = dims_of(x_shape, w.shape(), g);
  Tensor dyd = dense(dy), wd = dense(w);
  if (on_onednn(dy.dtype(), d, g)) return onednn_backward_data(dyd, wd, d, g);
  Tensor dx = make_empty(x_shape, dy.dtype());
  visit_floating(dy.dtype(), "conv2d backward", [&](auto tag) {
    using T = decltype(tag);
    backward_data_loop<T>(dyd.data_ptr<T>(), wd.data_ptr<T>(), dx.data_ptr<T>(), d, g);
  });
  return dx;
}

ConvWeightGrads conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape, bool want_bias,
                                        const ConvGeometry& g) {
  const ConvDims d = dims_of(x.shape(), w_shape, g);
  Tensor dyd = dense(dy), xd = dense(x);
  if (on_onednn(dy.dtype(), d, g)) return onednn_backward_weights(dyd, xd, d, g, want_bias);
  ConvWeightGrads out{make_empty(w_shape, dy.dtype()), want_bias ? make_empty({d.oc}, dy.dtype()) : Tensor()};
  visit_floating(dy.dtype(), "conv2d backward", [&](auto tag) {
    using T = decltype(tag);
    backward_weights_loop<T>(dyd.data_ptr<T>(), xd.data_ptr<T>(), out.dw.data_ptr<T>(),
                             want_bias ? out.dbias.data_ptr<T>() : nullptr, d, g);
  });
  return out;
}

}  // namespace weft::kernels
