// The autograd methods of Tensor: requires_grad, grad, backward, hooks, detach.
#include "autograd/engine.h"
#include "autograd/node.h"

namespace weft {

using autograd::autograd_meta;

bool Tensor::requires_grad() const { return autograd::requires_grad_fast(*this); }

Tensor& Tensor::requires_grad_(bool value) {
  WEFT_CHECK(defined(), "requires_grad_: the tensor is undefined");
  AutogradMeta& meta = autograd_meta(*this);
  WEFT_CHECK(meta.grad_fn == nullptr || value, "requires_grad_: you can only change requires_grad flags of "
             "leaf tensors. If you want to use a computed tensor in a graph that does not require grad, use "
             "detach()");
  WEFT_CHECK(!value || is_floating(dtype()), "requires_grad_: only tensors of floating point dtype can "
             "require gradients, but this one is ", dtype());
  meta.requires_grad = value;
  return *this;
}

const Tensor& Tensor::grad() const {
  static const Tensor undefined;
  TensorImpl* impl = checked();
  return impl->autograd ? impl->autograd->grad : undefined;
}

Tensor& Tensor::mutable_grad() const { return autograd_meta(*this).grad; }

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    WEFT_CHECK(grad.shape() == shape(), "set_grad: assigned grad has shape ", grad.shape(),
               " but the tensor has shape ", shape());
  autograd_meta(*this).grad = grad;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  TensorImpl* impl = checked();
  if (!impl->autograd) return none;
  // A view may be stale: see Note [In-place on views] in ops/inplace.cpp.
  if (impl->autograd->is_view) [[unlikely]] autograd::refresh_view_history(*this);
  return impl->autograd->grad_fn;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

uint32_t Tensor::output_nr() const { return impl_ && impl_->autograd ? impl_->autograd->output_nr : 0; }

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

void Tensor::retain_grad() const {
  WEFT_CHECK(requires_grad(), "retain_grad: can't retain_grad on a tensor that has requires_grad=false");
  const std::shared_ptr<autograd::Node>& fn = grad_fn();  // a stale view's, rebuilt first
  AutogradMeta& meta = autograd_meta(*this);
  if (fn == nullptr || meta.retains_grad) return;  // leaves keep .grad anyway
  meta.retains_grad = true;
  // See Note [retain_grad moves with the history].
  fn->pre_hooks.push_back({.output_nr = meta.output_nr, .hook = {}, .retained = impl_});
}

bool Tensor::retains_grad() const { return impl_ && impl_->autograd && impl_->autograd->retains_grad; }

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  WEFT_CHECK(requires_grad(), "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  AutogradMeta& meta = autograd_meta(*this);
  if (meta.grad_fn)
    meta.grad_fn->pre_hooks.push_back({.output_nr = meta.output_nr, .hook = std::move(hook), .retained = {}});
  else meta.hooks.push_back(std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  WEFT_CHECK(requires_grad() && is_leaf(), "register_post_accumulate_grad_hook: only leaf tensors that require "
             "grad can have post-accumulate hooks");
  autograd_meta(*this).post_accumulate_hooks.push_back(std::move(hook));
}

Tensor Tensor::detach() const {
  TensorImpl* impl = checked();
  // From the object pool, like every TensorImpl: ops that save their output detach it each call.
  // A detached value is what it was across the ranks: the alias keeps the SPMD type.
  auto alias = std::allocate_shared<TensorImpl>(detail::PoolAllocator<TensorImpl>(), TensorImpl::AliasOf{*impl});
  return Tensor(std::move(alias));
}

Tensor& Tensor::detach_() {
  if (impl_ && impl_->autograd) {
    impl_->autograd->grad_fn.reset();
    impl_->autograd->requires_grad = false;
    impl_->autograd->is_view = false;  // no longer part of its base's history
    impl_->autograd->view_base = Tensor();
  }
  return *this;
}

}  // namespace weft
