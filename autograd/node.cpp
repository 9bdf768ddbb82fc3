// Nodes, saved tensors, leaf accumulation and the recording helpers.
#include "autograd/node.h"

#include "autograd/engine.h"
#include "autograd/gradient_ops.h"
#include "kernels/toolkit.h"

namespace weft::autograd {
namespace {

// initial-exec: a plain TLS load per node instead of a __tls_get_addr call (see framework/allocator.cpp).
[[gnu::tls_model("initial-exec")]] thread_local uint64_t next_sequence_nr = 0;

// Note [Iterative teardown]
// A graph is a chain of shared_ptrs; freeing a long one recursively would overflow the stack.
// A dying node hands the children it alone owns to the list of the outermost ~Node on this
// thread's stack instead, which drains it in a loop. The list is this thread's reusable vector,
// except once that vector is destroyed: a graph held by a global or a thread_local dies after it
// (at exit, thread_local destructors run before static ones), and then a vector on the outermost
// destructor's stack takes its place.
using NodeList = std::vector<std::shared_ptr<Node>>;
struct DyingNodes {
  NodeList nodes;
  ~DyingNodes();
};
enum class ListState : uint8_t { Unset, Live, Dead };
[[gnu::tls_model("initial-exec")]] thread_local ListState list_state = ListState::Unset;
// The outermost ~Node's list while it drains; null otherwise. Trivially destructible.
[[gnu::tls_model("initial-exec")]] thread_local NodeList* draining = nullptr;

constinit std::mutex accumulator_mutex;

// See Note [Saved tensor hooks].
[[gnu::tls_model("initial-exec")]] thread_local autograd::SavedTensorHooks* saved_tensor_hooks = nullptr;

DyingNodes::~DyingNodes() { list_state = ListState::Dead; }

// This thread's reusable list, or null once it is destroyed.
NodeList* thread_list() {
  if (list_state == ListState::Dead) return nullptr;
  static thread_local DyingNodes list;
  list_state = ListState::Live;
  return &list.nodes;
}

}  // namespace

void SavedTensor::save(const Tensor& t, bool is_output, const Node* owner, uint32_t output_nr) {
  if (!t.defined()) return;
  // See Note [Inference tensors]. A node without edges records nothing (a custom Function called
  // with nothing requiring grad still saves its context).
  WEFT_CHECK(!t.is_inference() || owner->next_edges.empty(), owner->name(), ": an inference tensor (shape ", t.shape(), ", made under "
             "InferenceModeGuard) cannot be saved for backward; clone it to get a normal tensor");
  if (saved_tensor_hooks != nullptr) [[unlikely]] {
    packed_ = saved_tensor_hooks->pack(t);
    released_ = false;
    if (packed_) return;
  }
  version_ = t.impl()->storage ? t.version() : 0;
  const AutogradMeta* meta = t.impl()->autograd.get();
  const bool is_view = meta && meta->is_view;
  data_ = is_output || is_view ? t.detach() : t;  // see Note [Saved tensors]
  is_output_ = is_output;
  output_nr_ = output_nr;
  has_history_ = false;
  // See Note [Saved tensors and create_graph]. The view's history is current: make_node took its
  // edge (refreshing a stale view) before the node saved anything.
  if (is_view && !is_output && meta->grad_fn) {
    grad_fn_ = meta->grad_fn;
    output_nr_ = meta->output_nr;
    has_history_ = true;
  }
  released_ = false;
}

Tensor SavedTensor::unpack(const Node* owner) const {
  WEFT_CHECK(!released_, "Trying to backward through the graph a second time (or to use tensors saved by ",
             owner->name(), " after they were freed). Pass retain_graph=true to the first backward call "
             "if you need to backward through the graph again.");
  if (packed_) return packed_->unpack();
  if (data_.defined() && data_.impl()->storage)
    WEFT_CHECK(data_.version() == version_, "one of the tensors needed for gradient computation has been "
               "modified by an inplace operation: ", owner->name(), " saved a tensor of shape ",
               data_.shape(), " at version ", version_, ", but it is now at version ", data_.version());
  if (!GradMode::is_enabled() || !data_.defined()) [[likely]] return data_;
  // create_graph: see Note [Saved tensors and create_graph].
  std::shared_ptr<Node> fn;
  if (is_output_) {
    // A node that recorded nothing, or an integer output (indices): a constant.
    if (owner->next_edges.empty() || !is_floating(data_.dtype())) return data_;
    fn = const_cast<Node*>(owner)->shared_from_this();
  } else {
    if (!has_history_) return data_;  // an input (kept with its history) or a constant view
    fn = grad_fn_.lock();
    WEFT_CHECK(fn != nullptr, owner->name(), ": a view it saved for backward (shape ", data_.shape(), ") lost its "
               "history before a backward with create_graph=true; keep the view alive, or differentiate once");
  }
  Tensor alias = data_.detach();
  set_history(alias, fn, output_nr_);
  return alias;
}

void SavedTensor::take_history_of(const Tensor& source) {
  if (!requires_grad_fast(source)) return;
  Edge edge = gradient_edge(source);
  grad_fn_ = edge.node;
  output_nr_ = edge.input_nr;
  has_history_ = true;
}

void SavedTensor::release() {
  data_ = Tensor();
  packed_.reset();
  grad_fn_.reset();
  released_ = true;
}

SavedTensorHooksGuard::SavedTensorHooksGuard(SavedTensorHooks* hooks) : previous_(saved_tensor_hooks) {
  saved_tensor_hooks = hooks;
}
SavedTensorHooksGuard::~SavedTensorHooksGuard() { saved_tensor_hooks = previous_; }
SavedTensorHooks* SavedTensorHooksGuard::current() { return saved_tensor_hooks; }

Node::Node() : sequence_nr_(next_sequence_nr++) {}

Node::~Node() {
  if (NodeList* list = draining) {
    for (Edge& edge : next_edges)
      if (edge.node && edge.node.use_count() == 1) list->push_back(std::move(edge.node));
    return;
  }
  NodeList fallback;  // see Note [Iterative teardown]; allocates only after the thread's list died
  NodeList* list = thread_list();
  draining = list ? list : &fallback;
  for (Edge& edge : next_edges)
    if (edge.node && edge.node.use_count() == 1) draining->push_back(std::move(edge.node));
  while (!draining->empty()) {
    std::shared_ptr<Node> node = std::move(draining->back());
    draining->pop_back();
    node.reset();
  }
  draining = nullptr;
}

void Node::release_saved() {
  for (SavedTensor* saved : saved_) saved->release();
  saved_released = true;
}

// Note [In-place gradient accumulation]
// Outside create_graph, a gradient that reaches a leaf whose .grad is already set is added into
// that .grad in place, as PyTorch's AccumulateGrad does (`variable_grad += new_grad`): a caller
// holding x.grad() sees the sum, and an optimizer's references stay valid. It saves a tensor per
// leaf per backward, which matters most for a DTensor .grad (a spec, an impl and a local tensor).
// A .grad that can not hold the sum (a strided or broadcast tensor a user assigned, a narrower
// dtype, a DTensor gradient whose placements can not be brought to the .grad's) is replaced by an
// out-of-place sum instead. The version counter is bumped, so a graph that saved the old .grad
// refuses to use it.
variable_list AccumulateGrad::apply(variable_list&& grads) {
  Tensor grad = std::move(grads[0]);
  if (!grad.defined()) return {};
  std::lock_guard<std::mutex> lock(mutex_);  // concurrent backward passes sharing this leaf
  AutogradMeta& meta = autograd_meta(leaf_);  // the hooks already ran: see run_hooks()
  if (GradMode::is_enabled()) [[unlikely]] {
    // create_graph (Note [create_graph] in engine.cpp): .grad keeps its history, out of place, as
    // PyTorch's AccumulateGrad does under grad mode.
    if (meta.grad.defined()) meta.grad = recorded_add(meta.grad, grad);
    else meta.grad = grad.is_dtensor() ? grad : recorded_clone(grad);  // a DTensor's spec owns its copy rules
  } else if (!meta.grad.defined()) {
    // A gradient another tensor may also hold (add passes one gradient to both inputs) is
    // copied, so that an in-place change to one .grad never shows in another.
    // A strided or broadcast (stride 0) gradient is made dense, so in-place optimizer updates of
    // .grad touch each element once.
    bool shared = grad.impl_ptr().use_count() > 1 ||
                  (grad.impl()->storage && grad.impl()->storage.use_count() > 1) ||
                  (!grad.is_dtensor() && !grad.is_contiguous());
    meta.grad = shared && !grad.is_dtensor() ? kernels::contiguous_copy(grad) : grad.detach();
  } else if (!accumulate_gradients_in_place(meta.grad, grad)) {
    meta.grad = accumulate_gradients(meta.grad, grad).detach();
  }
  for (auto& hook : meta.post_accumulate_hooks) hook(leaf_);
  return {};
}

Tensor AccumulateGrad::run_hooks(Tensor grad) const {
  const AutogradMeta* meta = leaf_.impl()->autograd.get();
  if (meta == nullptr || !grad.defined()) return grad;
  for (const auto& hook : meta->hooks) {
    Tensor replaced = hook(grad);
    if (replaced.defined()) grad = std::move(replaced);
  }
  return grad;
}

AutogradMeta& autograd_meta(const Tensor& t) {
  TensorImpl* impl = t.impl();
  // From the object pool; AutogradMetaDeleter gives it back (see Note [Tensor object pool]).
  if (!impl->autograd)
    impl->autograd = AutogradMetaPtr(new (weft::detail::pool_allocate(sizeof(AutogradMeta))) AutogradMeta);
  return *impl->autograd;
}

void mark_view(const Tensor& view, const Tensor& x, ViewHistoryFn history) {
  AutogradMeta& meta = autograd_meta(view);
  meta.view_history = history;
  const AutogradMeta* x_meta = x.impl()->autograd.get();
  const bool x_is_view = x_meta && x_meta->is_view;
  meta.is_view = true;
  meta.view_base = x_is_view ? x_meta->view_base : x;
  meta.view_version = x.version();
  meta.no_grad_view = !GradMode::is_enabled() || (x_is_view && x_meta->no_grad_view);
}

// A view made with grad on follows its base into autograd: once the base requires grad (rebased by
// an in-place op through another view or on itself, or a leaf given requires_grad_), so does the
// view, and gradient_edge builds its history from the base's. A view made under no-grad stays a
// constant, unless its base, requiring grad, was modified in place since: then it requires grad
// so that its next use reaches refresh_view_history, which refuses it (as PyTorch does).
bool view_requires_grad(const AutogradMeta& meta, const Tensor& view) {
  if (!requires_grad_fast(meta.view_base)) return false;
  return !meta.no_grad_view || meta.view_version != view.version();
}

namespace {

// Note [retain_grad moves with the history]
// retain_grad keeps the gradient of a tensor's current value. When an in-place op gives the tensor
// a new grad_fn (set_history on it, CopySlices on its base, a stale view rebuilt), its retained
// entry moves from the old node to the new one, as in PyTorch >= 2.0. Hooks from register_hook stay
// on the node they were registered on: they keep seeing the gradient of the value they were
// registered for (PyTorch's documented behaviour).
void move_retained_grad(const Tensor& t, const AutogradMeta& meta, Node& to, uint32_t output_nr) {
  if (meta.grad_fn) {
    std::erase_if(meta.grad_fn->pre_hooks,
                  [&](const Node::PreHook& pre) { return pre.retained.lock() == t.impl_ptr(); });
  }
  to.pre_hooks.push_back({.output_nr = output_nr, .hook = {}, .retained = t.impl_ptr()});
}

}  // namespace

void refresh_view_history(const Tensor& t) {
  AutogradMeta* meta = t.impl() ? t.impl()->autograd.get() : nullptr;
  if (meta == nullptr || !meta->is_view || !t.impl()->storage) return;
  const uint64_t version = t.version();
  if (meta->view_version == version) return;
  const Tensor& base = meta->view_base;
  if (!meta->grad_fn && !requires_grad_fast(base)) return;  // neither is in autograd: nothing to rebuild
  // See check_inplace in ops/inplace.cpp: the same ambiguity, met after the fact.
  WEFT_CHECK(!meta->no_grad_view, "autograd: a view (shape ", t.shape(), ") made under NoGradGuard is used "
             "with grad mode on after its base (shape ", base.shape(), "), which requires grad, or another view "
             "of it was modified in place; which value its gradient should describe is ambiguous, so this is "
             "refused: make the view outside NoGradGuard, or use view.detach() if no gradient should flow "
             "through it");
  meta->view_version = version;
  // A base that left autograd (detach_) has no history to rebuild from; keep the view's own.
  if (!requires_grad_fast(base)) return;
  std::shared_ptr<Node> node = meta->view_history(base, t);
  if (meta->retains_grad) [[unlikely]] move_retained_grad(t, *meta, *node, 0);
  meta->grad_fn = std::move(node);
  meta->output_nr = 0;
  meta->requires_grad = true;
}

namespace {

// A leaf's accumulator, made on first use. Forward passes on several threads may use one leaf: it
// is made once, under a lock.
std::shared_ptr<Node> accumulator_of(const Tensor& t, AutogradMeta& meta) {
  std::lock_guard<std::mutex> lock(accumulator_mutex);
  std::shared_ptr<Node> accumulator = meta.grad_accumulator.lock();
  if (!accumulator) {
    accumulator = std::allocate_shared<AccumulateGrad>(weft::detail::PoolAllocator<AccumulateGrad>(), t);
    meta.grad_accumulator = accumulator;
  }
  return accumulator;
}

}  // namespace

Edge gradient_edge(const Tensor& t) {
  if (!requires_grad_fast(t)) return Edge{};
  AutogradMeta& meta = *t.impl()->autograd;
  if (meta.is_view) [[unlikely]] refresh_view_history(t);  // only views can go stale
  if (meta.grad_fn) return Edge{meta.grad_fn, meta.output_nr, t.shape(), t.dtype()};
  return Edge{accumulator_of(t, meta), 0, t.shape(), t.dtype()};
}

void append_gradient_edge(EdgeList& edges, const Tensor& t) {
  if (!requires_grad_fast(t)) {
    edges.emplace_back();
    return;
  }
  AutogradMeta& meta = *t.impl()->autograd;
  if (meta.is_view) [[unlikely]] refresh_view_history(t);  // only views can go stale
  if (meta.grad_fn) edges.emplace_back(meta.grad_fn, meta.output_nr, t.shape(), t.dtype());
  else edges.emplace_back(accumulator_of(t, meta), 0u, t.shape(), t.dtype());
}

void set_history(const Tensor& output, const std::shared_ptr<Node>& node, uint32_t output_nr) {
  set_history(output, std::shared_ptr<Node>(node), output_nr);
}

void set_history(const Tensor& output, std::shared_ptr<Node>&& node, uint32_t output_nr) {
  AutogradMeta& meta = autograd_meta(output);
  if (meta.retains_grad) [[unlikely]] move_retained_grad(output, meta, *node, output_nr);
  if (output_nr + 1 > node->num_outputs) node->num_outputs = output_nr + 1;
  meta.grad_fn = std::move(node);
  meta.output_nr = output_nr;
  meta.requires_grad = true;
}

}  // namespace weft::autograd
