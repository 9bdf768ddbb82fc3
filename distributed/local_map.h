// local_map: run code written for local tensors on DTensors, as one node of the outer tape whose
// backward brings gradients to the placements the caller declares. See docs/semantics.md, local_map.
#pragma once

#include <array>
#include <cstddef>
#include <memory_resource>
#include <span>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "distributed/device_mesh.h"
#include "distributed/dtensor.h"
#include "distributed/placement.h"
#include "framework/small_vector.h"

namespace weft::dist {

// One entry per leaf (input) or per output; std::nullopt stands for Python's None.
using PlacementsList = std::vector<std::optional<Placements>>;

struct LocalMapOptions {
  PlacementsList out_placements = {std::nullopt};
  std::optional<PlacementsList> in_placements = std::nullopt;
  std::optional<PlacementsList> in_grad_placements = std::nullopt;
  std::optional<DeviceMesh> device_mesh = std::nullopt;
  bool redistribute_inputs = false;
  // The caller promises every Shard output is evenly sharded: global shapes need no size exchange.
  bool even_shards = false;
  // Check the body's local SPMD types (docs/spmd_types.md): each op raises where the gradient it
  // would compute is wrong. WEFT_SPMD_TYPES=0 turns it off for every call.
  bool check_types = true;
  // When in_grad_placements is omitted and types are checked, local_map derives each DTensor
  // input's grad placements from the body (a Replicate input mixed with Varying values gets a
  // Partial gradient) and, if this is set, stores them here (one entry per leaf, as
  // in_grad_placements would be; None for non-DTensor leaves). Without checking: the default.
  PlacementsList* derived_in_grad_placements = nullptr;
};

namespace detail {

template <class T>
inline constexpr bool is_tensor_like_v = std::is_base_of_v<Tensor, std::decay_t<T>>;
template <class T>
struct is_tensor_vector : std::false_type {};
template <class T>
struct is_tensor_vector<std::vector<T>> : std::bool_constant<is_tensor_like_v<T>> {};
template <class T>
inline constexpr bool is_tensor_vector_v = is_tensor_vector<std::decay_t<T>>::value;
template <class T>
inline constexpr bool is_dtensor_typed_v =
    std::is_same_v<std::decay_t<T>, DTensor> || std::is_same_v<std::decay_t<T>, std::vector<DTensor>>;

// A flattened result: a tensor, or another value (which stays in the caller's result object).
struct OutputLeaf {
  bool is_tensor = false;
  Tensor tensor;
};
using OutputLeaves = std::pmr::vector<OutputLeaf>;

// How many leaves flatten_arg makes of `arg` (so that the leaf list is sized once).
template <class T>
size_t leaf_count(const T& arg) {
  if constexpr (is_tensor_vector_v<T>) return arg.size();
  else return 1;
}

// Steps 1-3 of docs/semantics.md, local_map, work on the flattened arguments: one leaf per tensor
// argument (each element of a vector of them) or other value (mesh, scalar, ...).
struct PreparedInputs {
  // The call's lists of leaves and outputs live in this buffer on the caller's stack (the heap only
  // past it), so that a call allocates nothing for them.
  std::array<std::byte, 1024> arena_bytes;
  std::pmr::monotonic_buffer_resource arena{arena_bytes.data(), arena_bytes.size()};
  bool any_dtensor = false;
  DeviceMesh mesh;
  // Per leaf: the tensor given (undefined for other values). prepare_inputs replaces a DTensor by
  // the one to use (redistributed if asked); run_local_map then replaces it by its local tensor.
  std::pmr::vector<Tensor> inputs{&arena};
  SmallVector<bool, 16> is_tensor;  // per leaf: a tensor argument (possibly undefined)
};

template <class T>
void flatten_arg(PreparedInputs& leaves, const T& arg) {
  if constexpr (is_tensor_like_v<T>) {
    leaves.inputs.push_back(arg);
    leaves.is_tensor.push_back(true);
  } else if constexpr (is_tensor_vector_v<T>) {
    for (const auto& t : arg) {
      leaves.inputs.push_back(t);
      leaves.is_tensor.push_back(true);
    }
  } else {
    leaves.inputs.emplace_back();
    leaves.is_tensor.push_back(false);
  }
}

// The local value `func` receives for an argument whose first leaf is locals[offset] (a tensor by
// reference: the locals outlive the call).
template <class T>
decltype(auto) localize(T&& arg, std::span<const Tensor> locals, size_t offset) {
  if constexpr (is_tensor_like_v<T>) return static_cast<const Tensor&>(locals[offset]);
  else if constexpr (is_tensor_vector_v<T>)
    return std::vector<Tensor>(locals.begin() + offset, locals.begin() + offset + arg.size());
  else return std::forward<T>(arg);
}

// The tensors are moved out of `r`: the body's outputs are then held once, so local_map can keep
// each as its DTensor's local tensor (run_local_map); rebuild_result reads only r's shape and its
// non-tensor values.
template <class R>
void flatten_result(OutputLeaves& out, R& r) {
  if constexpr (is_tensor_like_v<R>) out.push_back({true, std::move(r)});
  else if constexpr (is_tensor_vector_v<R>)
    for (auto& t : r) out.push_back({true, std::move(t)});
  else if constexpr (requires { std::tuple_size<R>::value; })
    std::apply([&](auto&... e) { (flatten_result(out, e), ...); }, r);
  else out.push_back({false, Tensor()});
}

// R with every Tensor turned into DTensor when `D` (some argument is typed DTensor).
template <class R, bool D>
struct map_result { using type = R; };
template <bool D>
struct map_result<Tensor, D> { using type = std::conditional_t<D, DTensor, Tensor>; };
template <bool D>
struct map_result<std::vector<Tensor>, D> { using type = std::vector<std::conditional_t<D, DTensor, Tensor>>; };
template <class... Ts, bool D>
struct map_result<std::tuple<Ts...>, D> { using type = std::tuple<typename map_result<Ts, D>::type...>; };
template <class A, class B, bool D>
struct map_result<std::pair<A, B>, D> {
  using type = std::pair<typename map_result<A, D>::type, typename map_result<B, D>::type>;
};

// The caller's result object, its tensors moved out of `outs`.
template <class M, class R>
M rebuild_result(R&& r, OutputLeaves& outs, size_t& next) {
  using V = std::decay_t<R>;
  if constexpr (is_tensor_like_v<V>) return M(std::move(outs[next++].tensor));
  else if constexpr (is_tensor_vector_v<V>) {
    M m;
    for (size_t i = 0; i < r.size(); ++i) m.emplace_back(std::move(outs[next++].tensor));
    return m;
  } else if constexpr (requires { std::tuple_size<V>::value; }) {
    return [&]<size_t... I>(std::index_sequence<I...>) {
      return M{rebuild_result<std::tuple_element_t<I, M>>(std::get<I>(std::forward<R>(r)), outs, next)...};
    }(std::make_index_sequence<std::tuple_size_v<V>>{});
  } else {
    ++next;
    return M(std::forward<R>(r));
  }
}

// Steps 1-3 of docs/semantics.md, local_map: checks, mesh inference, input redistribution.
void prepare_inputs(PreparedInputs& leaves, const LocalMapOptions& options);

// The call's body (locals per leaf -> flattened outputs appended to `out`), by reference: it lives
// on the caller's stack for the whole call, and a std::function would allocate for its captures on
// every call.
class BodyRef {
 public:
  template <class F>
  explicit BodyRef(F& f)
      : object_(&f), call_([](void* o, std::span<const Tensor> locals, OutputLeaves& out) {
          (*static_cast<F*>(o))(locals, out);
        }) {}
  void operator()(std::span<const Tensor> locals, OutputLeaves& out) const { call_(object_, locals, out); }

 private:
  void* object_;
  void (*call_)(void*, std::span<const Tensor>, OutputLeaves&);
};

// Runs `body` with the inputs' local tensors and wraps its outputs, recording local_map's boundary
// on the caller's tape (Note [local_map on the outer tape] in local_map.cpp). Returns the body's
// flattened outputs with each tensor replaced by its DTensor, in prepared's arena. prepared.inputs
// is reused for the locals: each DTensor in it is replaced by the local tensor the body receives.
OutputLeaves run_local_map(PreparedInputs& prepared, const LocalMapOptions& options, BodyRef body);

}  // namespace detail

// The reusable wrapper (Python's decorator form): nothing is checked until it is called, and a
// device mesh inferred on one call never sticks to the next.
template <class F>
class LocalMap {
 public:
  LocalMap(F func, LocalMapOptions options) : func_(std::move(func)), options_(std::move(options)) {}

  template <class... Args>
  auto operator()(Args&&... args) const {
    constexpr bool typed_dtensor = (detail::is_dtensor_typed_v<Args> || ...);
    using R = std::decay_t<std::invoke_result_t<const F&, decltype(detail::localize(
                                                              std::declval<Args>(), std::span<const Tensor>{}, 0))...>>;
    static_assert(!std::is_void_v<R>, "local_map: the function must return a value");
    using Mapped = typename detail::map_result<R, typed_dtensor>::type;

    detail::PreparedInputs prepared;
    const size_t count = (detail::leaf_count(args) + ... + size_t{0});
    prepared.inputs.reserve(count);
    prepared.is_tensor.reserve(count);
    std::array<size_t, sizeof...(Args)> offsets{};
    size_t arg = 0;
    ((offsets[arg++] = prepared.inputs.size(), detail::flatten_arg(prepared, args)), ...);
    detail::prepare_inputs(prepared, options_);

    auto call = [&](std::span<const Tensor> locals) {
      return [&]<size_t... I>(std::index_sequence<I...>) {
        auto refs = std::forward_as_tuple(args...);
        return func_(detail::localize(std::get<I>(refs), locals, offsets[I])...);
      }(std::index_sequence_for<Args...>{});
    };
    if (!prepared.any_dtensor) {
      if constexpr (typed_dtensor) {
        WEFT_ERROR("local_map: an argument typed DTensor holds no DTensor");
      } else {
        // Without DTensors, prepared.inputs holds each tensor leaf as given: the locals already.
        return Mapped(call(prepared.inputs));  // exactly as func returned it
      }
    }
    std::optional<R> result;
    auto body = [&](std::span<const Tensor> locals, detail::OutputLeaves& flat) {
      result.emplace(call(locals));
      detail::flatten_result(flat, *result);
    };
    detail::OutputLeaves outs = detail::run_local_map(prepared, options_, detail::BodyRef(body));
    size_t next = 0;
    return detail::rebuild_result<Mapped>(std::move(*result), outs, next);
  }

 private:
  F func_;
  LocalMapOptions options_;
};

// local_map(func, options): a callable that applies `func` to the local shards of DTensor
// arguments and wraps its tensor results as DTensors with `out_placements`.
template <class F>
LocalMap<std::decay_t<F>> local_map(F&& func, LocalMapOptions options = {}) {
  return LocalMap<std::decay_t<F>>(std::forward<F>(func), std::move(options));
}

}  // namespace weft::dist
