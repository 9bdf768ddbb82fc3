// The non-template half of the custom Function API.
#include "autograd/function.h"

#include <cxxabi.h>

#include <cstdlib>

#include "framework/factories.h"

namespace weft::autograd {

variable_list AutogradContext::get_saved_variables() const {
  variable_list out;
  out.reserve(saved_.size());
  for (const SavedTensor& s : saved_) out.push_back(s.unpack(node_));
  return out;
}

void AutogradContext::mark_non_differentiable(const variable_list& outputs) {
  for (const Tensor& t : outputs) non_differentiable_.push_back(t.impl());
}

Tensor zeros_for_gradient(const Shape& shape, DType dtype) { return zeros(shape, dtype); }

namespace detail {

void wrap_outputs(Node& node, variable_list& outputs, const variable_list& inputs, AutogradContext& ctx,
                  std::vector<std::pair<Shape, DType>>* meta) {
  std::shared_ptr<Node> self = node.shared_from_this();
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    // Without materialize_grads nothing needs an absent gradient's geometry: skip the list.
    if (meta && ctx.materialize_grads_)
      meta->push_back(out.defined() ? std::pair{out.shape(), out.dtype()} : std::pair{Shape{}, kFloat32});
    if (!out.defined()) continue;
    bool non_diff = std::find(ctx.non_differentiable_.begin(), ctx.non_differentiable_.end(), out.impl()) !=
                    ctx.non_differentiable_.end();
    if (non_diff) continue;
    // An output that is an input (or already has history) is aliased, so the input keeps its own. So
    // is a view made in forward (under no-grad): this node is its whole history, and its base is
    // forward's own business, which an in-place op on the output must not rebase.
    bool is_input = std::any_of(inputs.begin(), inputs.end(), [&](const Tensor& t) { return t.is_same(out); });
    const AutogradMeta* out_meta = out.impl()->autograd.get();
    if (is_input || (out_meta && out_meta->is_view) || out.grad_fn()) out = out.detach();
    set_history(out, self, static_cast<uint32_t>(i));
  }
  node.num_outputs = static_cast<uint32_t>(outputs.size());
}

void save_context(Node& node, AutogradContext& ctx, const variable_list& outputs) {
  std::vector<SavedTensor>& saved = ctx.saved_;
  saved.resize(ctx.to_save_.size());  // sized once: the node keeps pointers into it
  for (size_t i = 0; i < ctx.to_save_.size(); ++i) {
    const Tensor& t = ctx.to_save_[i];
    auto output = std::find_if(outputs.begin(), outputs.end(), [&](const Tensor& o) {
      return o.defined() && t.defined() && o.impl()->storage == t.impl()->storage;
    });
    bool is_output = output != outputs.end();
    // Which output it is: unpacked under create_graph, it is that output of this node.
    auto output_nr = static_cast<uint32_t>(is_output ? output - outputs.begin() : 0);
    node.save(saved[i], t, is_output, output_nr);
  }
  ctx.to_save_.clear();  // the list may hold outputs, whose grad_fn is this node
}

void type_function_outputs(spmd::Checker& checker, spmd::Linearity linearity, const std::string& name,
                           const variable_list& outputs, const variable_list& inputs) {
  SmallVector<const Tensor*, 4> operands;
  for (const Tensor& t : inputs) operands.push_back(&t);
  const spmd::OpName op{nullptr, &name, [](const void* p) {
                          return spmd::op_name_of_node(*static_cast<const std::string*>(p));
                        }};
  for (const Tensor& out : outputs) checker.apply(linearity, op, out, operands.data(), operands.size());
}

std::string demangled_name(const char* mangled) {
  int status = 0;
  char* name = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : mangled;
  std::free(name);
  size_t colon = out.rfind("::");
  return colon == std::string::npos ? out : out.substr(colon + 2);
}

}  // namespace detail
}  // namespace weft::autograd
