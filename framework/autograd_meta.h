// AutogradMeta: the per-tensor fields the autograd engine reads and writes.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "framework/tensor.h"

namespace weft {

// Allocated only for tensors that take part in autograd and for views (which must know their base
// whether or not it requires grad: see Note [In-place on views]), so plain tensors stay small.
struct AutogradMeta {
  bool requires_grad = false;   // leaves: set by the user; non-leaves: true when grad_fn is set
  bool retains_grad = false;    // non-leaves that keep their .grad
  bool is_view = false;         // made by a differentiable view op: shares its input's storage
  bool no_grad_view = false;    // a view made under no-grad (or a view of one): see check_inplace
  uint64_t view_version = 0;    // views: the storage version their grad_fn was made at
  // Views: rebuilds their grad_fn from the base's current history once it is stale (given by the
  // view op: autograd::mark_view).
  std::shared_ptr<autograd::Node> (*view_history)(const Tensor& base, const Tensor& view) = nullptr;
  uint32_t output_nr = 0;       // which output of grad_fn this tensor is
  Tensor grad;
  // Views: the tensor whose storage they view (for a view of a view, the first one's base). An
  // in-place op through the view rebases this tensor's history. See Note [In-place on views].
  Tensor view_base;
  std::shared_ptr<autograd::Node> grad_fn;
  // Leaves: the node that accumulates into .grad. Weak, because that node holds the leaf.
  std::weak_ptr<autograd::Node> grad_accumulator;
  std::vector<std::function<Tensor(const Tensor&)>> hooks;
  std::vector<std::function<void(const Tensor&)>> post_accumulate_hooks;
};

}  // namespace weft
