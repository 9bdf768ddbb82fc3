// The custom Function API: a class with static forward(ctx, args...) and backward(ctx, grads)
// becomes one node on the tape. weft's own distributed layer (local_map) is built on it.
#pragma once

#include <any>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "autograd/spmd_types.h"

namespace weft::autograd {

class AutogradContext;
namespace detail {
void wrap_outputs(Node& node, variable_list& outputs, const variable_list& inputs, AutogradContext& ctx,
                  std::vector<std::pair<Shape, DType>>* meta);
void save_context(Node& node, AutogradContext& ctx, const variable_list& outputs);
}  // namespace detail

class AutogradContext {
 public:
  // Tensors backward needs; version-checked when read back.
  void save_for_backward(variable_list tensors) { to_save_ = std::move(tensors); }
  variable_list get_saved_variables() const;
  // Whether the tensor input `i` (counting tensor inputs only) needs a gradient: its edge is valid
  // (a node recorded without grad has no edges).
  bool needs_input_grad(size_t i) const { return node_->needs_input_grad(i); }
  // Outputs that will never get a gradient (integer results, masks).
  void mark_non_differentiable(const variable_list& outputs);
  // When false, backward receives undefined tensors for outputs that got no gradient.
  void set_materialize_grads(bool value) { materialize_grads_ = value; }

  // Any state that is not a tensor.
  std::unordered_map<std::string, std::any> saved_data;
  // The Function's own typed state, when it declares `using State = ...` (see Note [Function
  // state]); S must be that type.
  template <class S>
  S& state() {
    WEFT_CHECK(state_type_ != nullptr && *state_type_ == typeid(S), "AutogradContext::state: this Function ",
               state_type_ ? "declares another State type" : "declares no State type");
    return *static_cast<S*>(state_);
  }

 private:
  template <class T>
  friend struct Function;
  template <class T>
  friend class CppNode;
  friend void detail::save_context(Node&, AutogradContext&, const variable_list&);
  friend void detail::wrap_outputs(Node&, variable_list&, const variable_list&, AutogradContext&,
                                   std::vector<std::pair<Shape, DType>>*);

  variable_list to_save_;
  std::vector<SavedTensor> saved_;
  std::vector<TensorImpl*> non_differentiable_;
  bool materialize_grads_ = true;
  const Node* node_ = nullptr;
  void* state_ = nullptr;
  const std::type_info* state_type_ = nullptr;
};

// Note [Function state]
// saved_data is a string-keyed map of std::any: every entry costs a map node, a bucket array and
// (past a pointer's size) a heap block for the value, on every call. A Function whose state is
// fixed can declare it instead: `using State = S;` makes the node itself hold one S (value
// initialised), reached through ctx->state<S>() in forward and backward. It lives and dies with
// the node, so it may not hold the node's outputs (the cycle the saved tensors avoid).
namespace detail {
struct NoState {};
template <class T>
struct state_of { using type = NoState; };
template <class T>
  requires requires { typename T::State; }
struct state_of<T> { using type = typename T::State; };
}  // namespace detail

// Zeros standing in for a gradient an output did not receive.
Tensor zeros_for_gradient(const Shape& shape, DType dtype);

template <class T>
class CppNode final : public Node {
 public:
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return *name_; }

  AutogradContext ctx;
  std::vector<std::pair<Shape, DType>> output_meta;  // for materialising absent gradients
  const std::string* name_ = nullptr;
  [[no_unique_address]] typename detail::state_of<T>::type state{};
};

namespace detail {
inline void collect_tensors(variable_list&, const auto&) {}
inline void collect_tensors(variable_list& out, const Tensor& t) { out.push_back(t); }
inline void collect_tensors(variable_list& out, const TensorList& list) { out.insert(out.end(), list.begin(), list.end()); }
inline variable_list to_list(Tensor t) { return {std::move(t)}; }
inline variable_list to_list(variable_list v) { return v; }
void wrap_outputs(Node& node, variable_list& outputs, const variable_list& inputs, AutogradContext& ctx,
                  std::vector<std::pair<Shape, DType>>* meta);
void save_context(Node& node, AutogradContext& ctx, const variable_list& outputs);
std::string demangled_name(const char* mangled);
// A Function's outputs inside a checking local_map body take its rule (Note [Local SPMD types]):
// `linearity` over its tensor inputs, under its own name.
void type_function_outputs(spmd::Checker& checker, spmd::Linearity linearity, const std::string& name,
                           const variable_list& outputs, const variable_list& inputs);
}  // namespace detail

// struct MyFn : Function<MyFn> {
//   static Tensor forward(AutogradContext* ctx, Tensor a, double k);
//   static variable_list backward(AutogradContext* ctx, variable_list grad_outputs);
// };
// Tensor y = MyFn::apply(a, 2.0);
template <class T>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args) {
    variable_list inputs;
    (detail::collect_tensors(inputs, args), ...);
    bool needs_grad = GradMode::is_enabled() && requires_grad_fast(inputs);
    // One pooled block for the node and its control block, as make_node does for ops.
    auto node = std::allocate_shared<CppNode<T>>(weft::detail::PoolAllocator<CppNode<T>>());
    static const std::string name = detail::demangled_name(typeid(T).name()) + "Backward";
    node->name_ = &name;  // demangled once per Function type, not per call
    // A custom backward is taken to be made of ops, as in PyTorch: under create_graph it records.
    node->supports_double_backward = true;
    if (needs_grad) {
      node->next_edges.reserve(inputs.size());
      for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
    }
    node->ctx.node_ = node.get();
    if constexpr (!std::is_same_v<typename detail::state_of<T>::type, detail::NoState>) {
      node->ctx.state_ = &node->state;
      node->ctx.state_type_ = &typeid(typename detail::state_of<T>::type);
    }
    // Inside a checking local_map body the Function is one op: its forward runs untyped, and its
    // outputs take the rule it declares (static constexpr spmd::Linearity spmd_linearity; none
    // declared: NonLinear). A Function declaring Own types its outputs itself.
    constexpr spmd::Linearity linearity = spmd::linearity_of<T>();
    spmd::Checker* checker = linearity == spmd::Linearity::Own ? nullptr : spmd::active();
    using Result = decltype(T::forward(&node->ctx, std::forward<Args>(args)...));
    Result result = [&] {
      NoGradGuard no_grad;
      std::optional<spmd::Suspend> untyped;
      if (checker) [[unlikely]] untyped.emplace();
      return T::forward(&node->ctx, std::forward<Args>(args)...);
    }();
    variable_list outputs = detail::to_list(result);
    if (checker) [[unlikely]] detail::type_function_outputs(*checker, linearity, name, outputs, inputs);
    if (needs_grad) detail::wrap_outputs(*node, outputs, inputs, node->ctx, &node->output_meta);
    detail::save_context(*node, node->ctx, outputs);
    if constexpr (std::is_same_v<std::decay_t<Result>, Tensor>) return outputs[0];
    else return outputs;
  }
};

template <class T>
variable_list CppNode<T>::apply(variable_list&& grads) {
  for (size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined() && ctx.materialize_grads_ && i < output_meta.size())
      grads[i] = zeros_for_gradient(output_meta[i].first, output_meta[i].second);
  grads.resize(std::max<size_t>(grads.size(), num_outputs));
  variable_list result = T::backward(&ctx, std::move(grads));
  WEFT_CHECK(result.size() == next_edges.size(), "function ", *name_, " returned an incorrect number of gradients "
             "(expected ", next_edges.size(), ", got ", result.size(), ")");
  for (size_t i = 0; i < result.size(); ++i)
    if (!next_edges[i].is_valid()) result[i] = Tensor();
  return result;
}

}  // namespace weft::autograd
