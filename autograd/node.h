// Node and Edge: the tape's records. A Node is one op's backward; its edges point at the nodes
// that produced its inputs.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/spmd_types.h"
#include "framework/autograd_meta.h"
#include "framework/tensor.h"

namespace weft::autograd {

using variable_list = std::vector<Tensor>;
class Node;

// Where a gradient goes: input `input_nr` of `node`, which expects `shape` and `dtype` (the
// geometry of the tensor the forward op received). An edge without a node carries nothing.
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  Shape shape;
  DType dtype = kFloat32;
  bool is_valid() const { return node != nullptr; }
};

// A node's edges, stored inline up to kInline so that recording an op with up to three inputs
// allocates nothing beyond its node (see DESIGN.md, "Recording a node allocates once").
class EdgeList {
 public:
  static constexpr size_t kInline = 3;
  EdgeList() = default;
  EdgeList(const EdgeList&) = delete;
  EdgeList& operator=(const EdgeList&) = delete;
  ~EdgeList() {
    for (size_t i = 0; i < size_; ++i) data_[i].~Edge();
    if (data_ != inline_data()) ::operator delete(data_);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Edge& operator[](size_t i) { return data_[i]; }
  const Edge& operator[](size_t i) const { return data_[i]; }
  Edge& back() { return data_[size_ - 1]; }
  const Edge& back() const { return data_[size_ - 1]; }
  Edge* begin() { return data_; }
  Edge* end() { return data_ + size_; }
  const Edge* begin() const { return data_; }
  const Edge* end() const { return data_ + size_; }

  void reserve(size_t count) {
    if (count <= capacity_) return;
    Edge* heap = static_cast<Edge*>(::operator new(count * sizeof(Edge)));
    for (size_t i = 0; i < size_; ++i) {
      new (heap + i) Edge(std::move(data_[i]));
      data_[i].~Edge();
    }
    if (data_ != inline_data()) ::operator delete(data_);
    data_ = heap;
    capacity_ = count;
  }
  void push_back(Edge edge) {
    if (size_ == capacity_) reserve(capacity_ * 2);
    new (data_ + size_) Edge(std::move(edge));
    ++size_;
  }
  // Constructs the next edge in place (make_node's edges: no temporary Edge to move and destroy).
  template <class... Args>
  Edge& emplace_back(Args&&... args) {
    if (size_ == capacity_) reserve(capacity_ * 2);
    Edge* edge = new (data_ + size_) Edge{std::forward<Args>(args)...};
    ++size_;
    return *edge;
  }

 private:
  Edge* inline_data() { return reinterpret_cast<Edge*>(inline_); }
  alignas(Edge) unsigned char inline_[kInline * sizeof(Edge)];
  Edge* data_ = inline_data();
  size_t size_ = 0;
  size_t capacity_ = kInline;
};

// A tensor kept for backward. Inputs are held as they are, except views; outputs and views as
// detached aliases, so that a node never owns a tensor whose history may come to hold the node
// (no reference cycles). The version seen at save time is checked when unpacked. See Note [Saved
// tensors].
struct PackedTensor;

class SavedTensor {
 public:
  SavedTensor() = default;
  // `owner` names the node in errors; `output_nr` says which of its outputs `t` is (is_output).
  void save(const Tensor& t, bool is_output, const Node* owner, uint32_t output_nr = 0);
  // The saved tensor; throws if it was modified in place since, or freed by an earlier backward.
  // Under grad mode (a backward with create_graph) a saved output or view comes back with its
  // history re-attached: see Note [Saved tensors and create_graph].
  Tensor unpack(const Node* owner) const;
  // Unpacks with `source`'s current history instead (see Node::save_value_of).
  void take_history_of(const Tensor& source);
  void release();
  bool defined() const { return data_.defined() || packed_ != nullptr; }

 private:
  Tensor data_;
  std::shared_ptr<PackedTensor> packed_;  // set instead of data_ by saved tensor hooks
  uint64_t version_ = 0;
  // A detached output or view's history, weak (see Note [Saved tensors and create_graph]).
  std::weak_ptr<Node> grad_fn_;
  uint32_t output_nr_ = 0;
  bool released_ = false;
  bool is_output_ = false;
  bool has_history_ = false;  // a view that required grad: grad_fn_ is its history
};

// Note [Saved tensors]
// A node saving one of its own outputs keeps a detached alias of it (same storage, no autograd
// state): the output's grad_fn is the node, so holding the output itself would be a reference
// cycle, and the graph would never be freed unless backward ran. Ops save outputs before
// set_history, so an output has no autograd state yet at save time; the alias is made anyway.
// A view is kept as a detached alias too: it holds its base, whose history an in-place op through
// another view may later route back to this node (z = mul(y.narrow(..), w); y.narrow(..).copy_(z)).
// Such a graph cannot run backward (the saved view's version moved), but it must still be freed.
// Backward without retain_graph frees what each node saved, right after the node ran; unpacking
// afterwards is the "backward through the graph a second time" error. In-place ops bump the
// storage's version counter; unpacking a tensor whose version moved names the node that needed it.
//
// Note [Saved tensors and create_graph]
// A backward with create_graph runs each node's apply() under grad mode so that its formula
// records, and the formula must see the saved tensors as the differentiable values they were. An
// output is saved detached and rebuilt on unpack with the owner as its grad_fn (the owner is
// running, so it is alive; nothing is stored). A saved view keeps its grad_fn weakly, as
// PyTorch's SavedVariable keeps an output's: the saving node reaches that grad_fn through its own
// edges anyway when the view was one of its inputs, and a weak pointer can never close a cycle.
// Under no-grad (every first-order backward) unpack returns the detached alias as before.

// Note [Saved tensor hooks]
// PyTorch's torch.autograd.graph.saved_tensors_hooks. While a SavedTensorHooksGuard is alive on a
// thread, every tensor a node saves there is first offered to the hooks' pack(): when it returns a
// PackedTensor the node keeps that instead of the tensor, and unpacking in backward asks it for
// the tensor back (the packed object does its own version check, if any). fully_shard
// (nn/fsdp.cpp) keeps gathered parameters out of the graph this way, so that they are freed after
// forward and gathered again for backward.
struct PackedTensor {
  virtual ~PackedTensor() = default;
  virtual Tensor unpack() = 0;
};
class SavedTensorHooks {
 public:
  virtual ~SavedTensorHooks() = default;
  // What to keep instead of `t`, or null to save `t` as usual.
  virtual std::shared_ptr<PackedTensor> pack(const Tensor& t) = 0;
};
// Installs `hooks` on this thread (they must outlive the guard); the previous ones come back at
// the end of the scope. current() is what is installed (null: none).
class SavedTensorHooksGuard {
 public:
  explicit SavedTensorHooksGuard(SavedTensorHooks* hooks);
  ~SavedTensorHooksGuard();
  SavedTensorHooksGuard(const SavedTensorHooksGuard&) = delete;
  SavedTensorHooksGuard& operator=(const SavedTensorHooksGuard&) = delete;
  static SavedTensorHooks* current();

 private:
  SavedTensorHooks* previous_;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // One gradient per forward output in, one per forward input out (undefined where none).
  virtual variable_list apply(variable_list&& grads) = 0;
  virtual std::string name() const = 0;

  // Frees what this node saved for backward (see Note [Saved tensors]). Virtual: a node that
  // wraps another (CopySlices) frees the wrapped node's tensors too.
  virtual void release_saved();
  // Saves `t` into one of the node's SavedTensor members; release_saved() will free it.
  void save(SavedTensor& slot, const Tensor& t, bool is_output = false, uint32_t output_nr = 0) {
    slot.save(t, is_output, this, output_nr);
    saved_.push_back(&slot);
  }

  // Saves `copy`, a new tensor holding `source`'s current values (which an in-place op is about to
  // overwrite): unpacked under create_graph, it has source's current history, which this node
  // reaches through its edges (Note [Saved tensors and create_graph]).
  void save_value_of(SavedTensor& slot, const Tensor& copy, const Tensor& source) {
    slot.save(copy, false, this);
    slot.take_history_of(source);
    saved_.push_back(&slot);
  }

  bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].is_valid(); }
  // The engine runs the ready node with the highest sequence number first: the latest recorded.
  uint64_t sequence_nr() const { return sequence_nr_; }
  // Makes this node run as soon as it is ready, before every ordinary node, as PyTorch runs a
  // leaf's AccumulateGrad: for a node that only passes its gradient on (local_map's input alias),
  // so that hooks on it fire when the gradient is complete rather than at the end of backward.
  // Such nodes keep their creation order among themselves: every rank runs them in the same order.
  void run_when_ready() { sequence_nr_ |= uint64_t{1} << 63; }

  EdgeList next_edges;
  // What runs on the gradient of output `output_nr` before apply(): a hook registered on that
  // (non-leaf) tensor, or its retain_grad, which stores the gradient into `retained`'s .grad after
  // every hook ran. `retained` is weak: a node must not own its outputs. Both are rare, so they share
  // one list (no field on every node). See Note [retain_grad moves with the history].
  struct PreHook {
    uint32_t output_nr = 0;
    std::function<Tensor(const Tensor&)> hook;
    std::weak_ptr<TensorImpl> retained;
  };
  std::vector<PreHook> pre_hooks;
  bool saved_released = false;
  bool is_accumulator = false;  // an AccumulateGrad: the engine's leaf sink, known without a cast
  // apply() is made of differentiable ops (and unpacks what it saved), so under create_graph its
  // results carry their true history. Set by make_node from NodeT::kSupportsDoubleBackward. A node
  // without it (a backward on a fused kernel) gets, under create_graph, results whose history is a
  // node that raises "double backward is not implemented for <name>" if a second backward reaches
  // it: never a silently wrong second derivative. See Note [create_graph] in autograd/engine.cpp.
  bool supports_double_backward = false;
  uint32_t num_outputs = 1;  // forward outputs, i.e. gradients apply() receives
  // The engine's per-task scratch: the task that discovered this node and the node's slot there.
  // Atomic: tasks on other threads may share the node (a leaf's accumulator). See Note [Task
  // scratch] in autograd/engine.cpp.
  std::atomic<uint64_t> task_stamp{0};
  uint32_t task_slot = 0;

 private:
  uint64_t sequence_nr_;
  SmallVector<SavedTensor*, 4> saved_;
};

// The leaf's node: accumulates into .grad, running the leaf's hooks before and after. Backward
// passes on several threads may share a leaf: apply() holds the leaf's mutex while it updates
// .grad, as PyTorch's AccumulateGrad does (see Note [Autograd and threads] in autograd/engine.cpp).
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) { is_accumulator = true; }
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  const Tensor& leaf() const { return leaf_; }
  std::mutex& mutex() { return mutex_; }
  // The leaf's register_hook hooks applied to `grad`, in order. The engine runs them before
  // anything sees the leaf's gradient (its capture by autograd::grad, then apply()).
  Tensor run_hooks(Tensor grad) const;

 private:
  Tensor leaf_;
  std::mutex mutex_;
};

// --- recording helpers for ops (see ops/ for their use) ---

// A view whose own flag is off may require grad through its base: see view_requires_grad.
bool view_requires_grad(const AutogradMeta& meta, const Tensor& view);

inline bool requires_grad_fast(const Tensor& t) {
  if (!t.defined()) return false;
  const AutogradMeta* meta = t.impl()->autograd.get();
  return meta && (meta->requires_grad || (meta->is_view && view_requires_grad(*meta, t)));
}
inline bool requires_grad_fast(const TensorList& list) {
  for (const Tensor& t : list)
    if (requires_grad_fast(t)) return true;
  return false;
}

// The edge a gradient for `t` travels: its grad_fn, or its leaf accumulator. Invalid when `t`
// does not require grad.
Edge gradient_edge(const Tensor& t);
// The same edge, appended to `edges` in place.
void append_gradient_edge(EdgeList& edges, const Tensor& t);

namespace detail {
inline size_t count_inputs(const Tensor&) { return 1; }
inline size_t count_inputs(const TensorList& list) { return list.size(); }
inline void add_edges(Node& node, const Tensor& t) { append_gradient_edge(node.next_edges, t); }
inline void add_edges(Node& node, const TensorList& list) {
  for (const Tensor& t : list) append_gradient_edge(node.next_edges, t);
}
}  // namespace detail

// Makes the backward node of an op when grad mode is on and any input requires grad; otherwise
// returns null and the op records nothing. Inputs are Tensors (possibly undefined) or TensorLists,
// in the order the node's apply() returns their gradients.
template <class NodeT, class... Inputs>
std::shared_ptr<NodeT> make_node(const Inputs&... inputs) {
  if (!GradMode::is_enabled() || !(requires_grad_fast(inputs) || ...)) return nullptr;
  auto node = std::allocate_shared<NodeT>(weft::detail::PoolAllocator<NodeT>());  // one pooled block
  if constexpr (requires { NodeT::kSupportsDoubleBackward; })
    node->supports_double_backward = NodeT::kSupportsDoubleBackward;
  node->next_edges.reserve((detail::count_inputs(inputs) + ...));
  (detail::add_edges(*node, inputs), ...);
  return node;
}

// How a stale view's history is rebuilt from its base's current one: for weft's view ops, the
// gradient scattered back through the view's geometry (as_strided's backward, which needs ops).
using ViewHistoryFn = decltype(AutogradMeta::view_history);

// Marks `view` (sharing x's storage, its history, if any, just recorded) a view of x's base: x's
// own base if x is a view, else x. Every view op calls it, under no-grad too and whether or not x
// requires grad, and passes the `history` refresh_view_history will rebuild it with: passed, not
// registered, so autograd needs nothing from the layer above. See Note [In-place on views] in
// ops/inplace.cpp.
void mark_view(const Tensor& view, const Tensor& x, ViewHistoryFn history);

// If `t` is a view whose storage was modified in place since its grad_fn was made, rebuilds its
// grad_fn from its base's current history (refusing a view made under no-grad). gradient_edge and
// Tensor::grad_fn call it.
void refresh_view_history(const Tensor& t);

// Makes `output` the `output_nr`-th result of `node`: it now requires grad and is not a leaf. An
// in-place op calls it on a tensor that had a history: its retain_grad moves to `node`.
void set_history(const Tensor& output, const std::shared_ptr<Node>& node, uint32_t output_nr = 0);
// The same, taking the caller's reference: a node's last owner besides the tape hands it over
// without a reference-count round trip (two atomic operations per recorded op).
void set_history(const Tensor& output, std::shared_ptr<Node>&& node, uint32_t output_nr = 0);

// The autograd fields of `t`, created on first use.
AutogradMeta& autograd_meta(const Tensor& t);

// Note [Recording a node]
// Every differentiable op ends the same way: when grad mode is on and an input requires grad, make
// its backward node (defined beside the op, in an anonymous namespace), fill in what backward
// needs, and make the node the history of the op's output. record<NodeT> is that one step:
//   return autograd::record<MulBackward>(y, [&](MulBackward& n) { n.save(n.a, a); }, a, b);
// `init` (optional) fills the node; `inputs` (Tensors or TensorLists) are in the order the node's
// apply() returns their gradients. Under no-grad, or when no input requires grad, it records nothing.
// Inside a checking local_map body it also applies NodeT's SPMD type rule (NodeT::spmd_linearity,
// Note [Local SPMD types]), whether or not it records: under no-grad too.
template <class T>
concept RecordInput = std::convertible_to<const T&, const Tensor&> || std::same_as<T, TensorList>;

template <class NodeT, class Init, RecordInput... Inputs>
  requires std::invocable<Init&, NodeT&>
Tensor record(Tensor output, Init&& init, const Inputs&... inputs) {
  auto node = make_node<NodeT>(inputs...);
  if (node) init(*node);
  if (spmd::Checker* checker = spmd::active()) [[unlikely]]
    spmd::detail::check_node<NodeT>(*checker, node.get(), output, init, inputs...);
  if (node) set_history(output, std::move(node));
  return output;
}

template <class NodeT, RecordInput... Inputs>
Tensor record(Tensor output, const Inputs&... inputs) {
  return record<NodeT>(std::move(output), [](NodeT&) {}, inputs...);
}

}  // namespace weft::autograd
