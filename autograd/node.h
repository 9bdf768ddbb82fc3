// Node and Edge: the tape's records. A Node is one op's backward; its edges point at the nodes
// that produced its inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
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

// A tensor kept for backward. Inputs are held as they are; outputs as detached aliases, so that a
// node never owns a tensor whose grad_fn is the node itself (no reference cycles). The version
// seen at save time is checked when unpacked. See Note [Saved tensors].
class SavedTensor {
 public:
  SavedTensor() = default;
  void save(const Tensor& t, bool is_output = false);
  // The saved tensor; throws if it was modified in place since, or freed by an earlier backward.
  Tensor unpack(const Node* owner) const;
  void release();
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  uint64_t version_ = 0;
  bool released_ = false;
};

// Note [Saved tensors]
// Backward without retain_graph frees what each node saved, right after the node ran; unpacking
// afterwards is the "backward through the graph a second time" error. In-place ops bump the
// storage's version counter; unpacking a tensor whose version moved names the node that needed it.

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // One gradient per forward output in, one per forward input out (undefined where none).
  virtual variable_list apply(variable_list&& grads) = 0;
  virtual std::string name() const = 0;

  // Frees what this node saved for backward (see Note [Saved tensors]).
  void release_saved();
  // Saves `t` into one of the node's SavedTensor members; release_saved() will free it.
  void save(SavedTensor& slot, const Tensor& t, bool is_output = false) {
    slot.save(t, is_output);
    saved_.push_back(&slot);
  }

  bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].is_valid(); }
  uint64_t sequence_nr() const { return sequence_nr_; }

  std::vector<Edge> next_edges;
  // Hooks registered on this node's outputs (non-leaf tensors): (output_nr, hook).
  std::vector<std::pair<uint32_t, std::function<Tensor(const Tensor&)>>> pre_hooks;
  bool saved_released = false;
  uint32_t num_outputs = 1;  // forward outputs, i.e. gradients apply() receives

 private:
  uint64_t sequence_nr_;
  SmallVector<SavedTensor*, 4> saved_;
};

// The leaf's node: accumulates into .grad, running the leaf's hooks before and after.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) {}
  variable_list apply(variable_list&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  const Tensor& leaf() const { return leaf_; }

 private:
  Tensor leaf_;
};

// --- recording helpers for ops (see ops/ for their use) ---

inline bool requires_grad_fast(const Tensor& t) {
  return t.defined() && t.impl()->autograd && t.impl()->autograd->requires_grad;
}
inline bool requires_grad_fast(const TensorList& list) {
  for (const Tensor& t : list)
    if (requires_grad_fast(t)) return true;
  return false;
}

// The edge a gradient for `t` travels: its grad_fn, or its leaf accumulator. Invalid when `t`
// does not require grad.
Edge gradient_edge(const Tensor& t);

namespace detail {
inline size_t count_inputs(const Tensor&) { return 1; }
inline size_t count_inputs(const TensorList& list) { return list.size(); }
inline void add_edges(Node& node, const Tensor& t) { node.next_edges.push_back(gradient_edge(t)); }
inline void add_edges(Node& node, const TensorList& list) {
  for (const Tensor& t : list) node.next_edges.push_back(gradient_edge(t));
}
}  // namespace detail

// Makes the backward node of an op when grad mode is on and any input requires grad; otherwise
// returns null and the op records nothing. Inputs are Tensors (possibly undefined) or TensorLists,
// in the order the node's apply() returns their gradients.
template <class NodeT, class... Inputs>
std::shared_ptr<NodeT> make_node(const Inputs&... inputs) {
  if (!GradMode::is_enabled() || !(requires_grad_fast(inputs) || ...)) return nullptr;
  auto node = std::make_shared<NodeT>();
  node->next_edges.reserve((detail::count_inputs(inputs) + ...));
  (detail::add_edges(*node, inputs), ...);
  return node;
}

// Makes `output` the `output_nr`-th result of `node`: it now requires grad and is not a leaf.
void set_history(const Tensor& output, const std::shared_ptr<Node>& node, uint32_t output_nr = 0);

// The autograd fields of `t`, created on first use.
AutogradMeta& autograd_meta(const Tensor& t);

}  // namespace weft::autograd
