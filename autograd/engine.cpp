// The backward engine. See Note [Gradient arithmetic] and Note [Undefined gradients].
#include "autograd/engine.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "autograd/autocast_mode.h"
#include "autograd/gradient_ops.h"
#include "framework/factories.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/toolkit.h"

namespace weft::autograd {

// Note [Undefined gradients]
// An undefined tensor stands for a gradient of zeros that was never materialised. A node whose
// incoming gradients are all undefined is skipped and passes undefined on; a node with some
// defined and some undefined receives them as they are and must treat undefined as zero.

Tensor accumulate_gradients(const Tensor& a, const Tensor& b) {
  if (a.is_dtensor()) [[unlikely]] return a.impl()->dist->add_gradients(a, b);
  if (b.is_dtensor()) [[unlikely]] return b.impl()->dist->add_gradients(a, b);
  DType dtype = promote_types(a.dtype(), b.dtype());
  return kernels::binary(kernels::BinaryOp::Add, kernels::cast(a, dtype), kernels::cast(b, dtype));
}

bool accumulate_gradients_in_place(const Tensor& sum, const Tensor& grad) {
  if (sum.is_dtensor()) return sum.impl()->dist->add_gradient_in_place(sum, grad);
  if (grad.is_dtensor() || sum.shape() != grad.shape() || !sum.is_contiguous() ||
      promote_types(sum.dtype(), grad.dtype()) != sum.dtype())
    return false;
  kernels::binary_out(kernels::BinaryOp::Add, sum, sum, kernels::cast(grad, sum.dtype()));
  sum.bump_version();  // a graph that saved this .grad sees that it changed
  return true;
}

// Note [create_graph]
// A backward with create_graph runs under grad mode, so that each node's apply() records the ops
// its formula is made of, and the engine's own arithmetic on gradients that require grad (the sum
// of contributions, the reduction of a broadcast gradient to its input's shape, the cast to its
// dtype, the copy that ends in .grad or a retained grad) goes through the recording versions in
// autograd/gradient_ops.h instead of the kernels. Saved outputs and views come back from unpack
// with their history (Note [Saved tensors and create_graph]). A node whose apply() runs a fused
// kernel (it lacks supports_double_backward) cannot record: its results are given a
// DoubleBackwardNotImplemented node as history, whose edges are the incoming gradients' and the
// node's own inputs' (everything the result may depend on), and which raises, naming the node, if
// a second backward reaches it. Without create_graph nothing here runs: the first-order path is
// the kernels, under no-grad, as before.

namespace {

struct DoubleBackwardNotImplemented final : Node {
  std::string op;
  variable_list apply(variable_list&&) override {
    WEFT_ERROR("double backward is not implemented for ", op, ": its backward runs a fused kernel that records "
               "no graph, so the gradient it gave under create_graph=true cannot be differentiated again");
  }
  std::string name() const override { return "DoubleBackwardNotImplemented(" + op + ")"; }
};

// Gives `node`'s results (computed under create_graph by a non-recording formula) the history
// that refuses a second backward. See Note [create_graph].
void poison_results(Node& node, const variable_list& grads, variable_list& outputs) {
  auto refuse = std::allocate_shared<DoubleBackwardNotImplemented>(weft::detail::PoolAllocator<DoubleBackwardNotImplemented>());
  refuse->op = node.name();
  for (const Tensor& g : grads)
    if (requires_grad_fast(g)) refuse->next_edges.push_back(gradient_edge(g));
  for (const Edge& e : node.next_edges)
    if (e.is_valid()) refuse->next_edges.push_back(Edge{e.node, e.input_nr, e.shape, e.dtype});
  if (refuse->next_edges.empty()) return;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined() || !is_floating(outputs[i].dtype())) continue;
    outputs[i] = outputs[i].detach();
    set_history(outputs[i], refuse, static_cast<uint32_t>(i));
  }
}

// Note [Task scratch]
// A backward over a chain of tiny ops must cost little per node, so the engine keeps no hash maps:
// each task numbers the nodes it discovers (a flat vector of states, in discovery order) and
// stamps each node with (task, slot). A node belongs to the current task when its stamp is the
// task's. Tasks on one thread nest (a hook may call grad()), so a task remembers the stamps it
// overwrote and puts them back when it ends. The task's vectors come from a per-thread spare list
// (TaskScratch), so a training step's backward, and local_map's nested one, allocate none of them.
//
// Note [Autograd and threads]
// As in PyTorch, backward passes may run on several threads at once over graphs that share leaves:
// each leaf's AccumulateGrad updates .grad under its own mutex, and a leaf's accumulator is made
// once under a lock. A task stamps a node only if it is unstamped or stamped by an enclosing task
// on the same thread (a compare-and-swap, so two threads never both own it); a node another thread
// has stamped goes into this task's side table (`foreign`) instead, and its stamp is left alone.
// Not thread-safe, as in PyTorch: running backward concurrently through shared non-leaf nodes
// without retain_graph (the first frees what the node saved), retain_grad or hooks on shared
// non-leaf tensors, and modifying a tensor (in place, requires_grad_, .grad) while another thread
// uses it. Generators: see Note [Generator threads].
std::atomic<uint64_t> next_task_stamp{1};

struct NodeState {
  Node* node = nullptr;
  int dependencies = 0;
  bool needed = true;
  bool queued = false;
  bool target = false;  // grad(): an input is captured at this node
  bool stamped = false;  // this task owns the node's stamp (else the node is in `foreign`)
  uint64_t old_stamp = 0;
  uint32_t old_slot = 0;
  variable_list buffer;
};

// Where grad() wants a gradient: input `input_nr` of `node`, into slot `index` of captured.
struct Capture {
  Node* node;
  uint32_t input_nr;
  size_t index;
};

using Ready = std::pair<uint64_t, Node*>;  // (sequence number, node): a max-heap runs the latest first

// The vectors one task fills. They are kept per thread between tasks, emptied but with their
// capacity, so a backward allocates none of them after the first; nested tasks take their own.
struct TaskScratch {
  std::vector<NodeState> states;  // in discovery order; indexed by Node::task_slot
  std::vector<Node*> order;       // discovery post-order: children before parents
  std::vector<std::pair<Node*, size_t>> stack;
  std::vector<Ready> ready;  // a heap
  std::vector<Capture> captures;
  std::unordered_map<const Node*, uint32_t> foreign;  // nodes stamped by another thread's task
  // Emptied gradient lists (a node's input buffer after it ran, the list its apply() returned),
  // handed to the next nodes' buffers instead of allocating one per node. Kept across tasks.
  std::vector<variable_list> spare_lists;

  void clear() {
    constexpr size_t kKeep = 4096;  // a huge graph's capacity is not kept for ever
    states.clear();
    order.clear();
    stack.clear();
    ready.clear();
    captures.clear();
    foreign.clear();
    if (states.capacity() > kKeep) {
      states.shrink_to_fit();
      order.shrink_to_fit();
      stack.shrink_to_fit();
      ready.shrink_to_fit();
    }
  }
};

thread_local std::vector<std::unique_ptr<TaskScratch>> spare_scratch;
class GraphTask;
// The innermost task running on this thread; tasks link to the one they nest in.
[[gnu::tls_model("initial-exec")]] thread_local GraphTask* current_task = nullptr;

std::unique_ptr<TaskScratch> take_scratch() {
  if (spare_scratch.empty()) return std::make_unique<TaskScratch>();
  std::unique_ptr<TaskScratch> scratch = std::move(spare_scratch.back());
  spare_scratch.pop_back();
  return scratch;
}

class GraphTask {
 public:
  GraphTask(bool retain_graph, bool accumulate, bool create_graph = false)
      : retain_graph_(retain_graph || create_graph),
        accumulate_(accumulate),
        create_graph_(create_graph),
        stamp_(next_task_stamp.fetch_add(1)),
        scratch_(take_scratch()),
        states_(scratch_->states),
        order_(scratch_->order),
        ready_(scratch_->ready),
        captures_(scratch_->captures),
        foreign_(scratch_->foreign),
        enclosing_(current_task) {
    current_task = this;
  }
  ~GraphTask() {
    for (size_t i = states_.size(); i-- > 0;) {
      if (!states_[i].stamped) continue;
      states_[i].node->task_slot = states_[i].old_slot;  // before the stamp: see claim()
      states_[i].node->task_stamp.store(states_[i].old_stamp, std::memory_order_release);
    }
    current_task = enclosing_;
    scratch_->clear();
    spare_scratch.push_back(std::move(scratch_));
  }
  GraphTask(const GraphTask&) = delete;
  GraphTask& operator=(const GraphTask&) = delete;

  void add_capture(const Edge& edge, size_t index) {
    captures_.push_back({edge.node.get(), edge.input_nr, index});
  }

  void run(const std::vector<Edge>& root_edges, variable_list& root_grads, variable_list* captured);

 private:
  NodeState* state_of(const Node* node) {
    if (node == nullptr) return nullptr;
    if (node->task_stamp.load(std::memory_order_relaxed) == stamp_) return &states_[node->task_slot];
    if (foreign_.empty()) [[likely]] return nullptr;
    auto it = foreign_.find(node);
    return it == foreign_.end() ? nullptr : &states_[it->second];
  }
  // True when `stamp` is this task's or that of a task it nests in (on this thread).
  bool own_stamp(uint64_t stamp) const {
    for (const GraphTask* t = this; t != nullptr; t = t->enclosing_)
      if (t->stamp_ == stamp) return true;
    return false;
  }
  // Gives `node` a slot; false when it already has one. See Note [Autograd and threads]: the stamp
  // is taken by compare-and-swap from an unstamped node or an enclosing task's; the acquire pairs
  // with the release of the task that last put a stamp back, after writing the slot.
  bool claim(Node* node) {
    uint64_t seen = node->task_stamp.load(std::memory_order_acquire);
    if (seen == stamp_) return false;
    const auto slot = static_cast<uint32_t>(states_.size());
    if ((seen == 0 || own_stamp(seen)) &&
        node->task_stamp.compare_exchange_strong(seen, stamp_, std::memory_order_acq_rel)) {
      NodeState& st = states_.emplace_back();
      st.node = node;
      st.stamped = true;
      st.old_stamp = seen;
      st.old_slot = node->task_slot;
      node->task_slot = slot;
      return true;
    }
    if (!foreign_.emplace(node, slot).second) return false;
    states_.emplace_back().node = node;
    return true;
  }
  void push_ready(Node* node) {
    ready_.push_back({node->sequence_nr(), node});
    std::push_heap(ready_.begin(), ready_.end());
  }
  void recycle(variable_list& list) {
    constexpr size_t kMaxSpare = 64;
    if (list.capacity() == 0 || scratch_->spare_lists.size() >= kMaxSpare) return;
    list.clear();
    scratch_->spare_lists.push_back(std::move(list));
  }
  void discover(const std::vector<Edge>& root_edges);
  void mark_needed();
  Tensor validate(Node* node, size_t i, Tensor grad);
  void deliver(NodeState& state, const Edge& edge, Tensor grad);
  void execute(Node* node, variable_list* captured);

  bool retain_graph_;
  bool accumulate_;
  bool create_graph_;  // see Note [create_graph]
  uint64_t stamp_;
  std::unique_ptr<TaskScratch> scratch_;
  std::vector<NodeState>& states_;
  std::vector<Node*>& order_;
  std::vector<Ready>& ready_;
  std::vector<Capture>& captures_;
  std::unordered_map<const Node*, uint32_t>& foreign_;
  GraphTask* enclosing_;
};

void GraphTask::discover(const std::vector<Edge>& root_edges) {
  // Iterative DFS producing a post-order, so that `needed` can be computed children first.
  std::vector<std::pair<Node*, size_t>>& stack = scratch_->stack;
  for (const Edge& root : root_edges) {
    if (!root.is_valid() || !claim(root.node.get())) continue;
    stack.push_back({root.node.get(), 0});
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->next_edges.size()) {
        Node* child = node->next_edges[next++].node.get();
        if (child && claim(child)) stack.push_back({child, 0});
      } else {
        order_.push_back(node);
        stack.pop_back();
      }
    }
  }
}

void GraphTask::mark_needed() {
  // Accumulating runs everything reachable; grad() runs only what leads to a captured input (a
  // captured leaf's accumulator receives its gradient but never accumulates, see execute()).
  if (!accumulate_) {
    for (const Capture& c : captures_)
      if (NodeState* st = state_of(c.node)) st->target = true;
    for (Node* node : order_) {  // children before parents
      bool needed = state_of(node)->target;
      for (const Edge& e : node->next_edges)
        if (e.node && state_of(e.node.get())->needed) needed = true;
      state_of(node)->needed = needed;
    }
  }
  for (Node* node : order_) {
    if (!state_of(node)->needed) continue;
    for (const Edge& e : node->next_edges)
      if (e.node) {
        NodeState* child = state_of(e.node.get());
        if (child->needed) ++child->dependencies;
      }
  }
}

Tensor GraphTask::validate(Node* node, size_t i, Tensor grad) {
  const Edge& edge = node->next_edges[i];
  if (!grad.defined()) return grad;
  if (grad.shape() != edge.shape) {
    WEFT_CHECK(is_broadcastable_to(edge.shape, grad.shape()), "Function ", node->name(),
               " returned an invalid gradient at index ", i, " - got ", grad.shape(),
               " but expected shape compatible with ", edge.shape);
    grad = create_graph_ ? recorded_sum_to(grad, edge.shape) : kernels::sum_to(grad, edge.shape);
  }
  if (grad.dtype() != edge.dtype && !grad.is_dtensor())
    grad = create_graph_ ? recorded_cast(grad, edge.dtype) : kernels::cast(grad, edge.dtype);
  if (AnomalyMode::is_enabled() && !grad.is_dtensor() && kernels::has_nan(grad))
    WEFT_ERROR("Function ", node->name(), " returned nan values in its ", i, "th output (anomaly mode)");
  return grad;
}

// True when `slot` is a plain dense gradient only this buffer holds (no other handle, no view
// of its storage), of grad's shape and dtype: summing into it in place is then invisible.
bool owned_dense_like(const Tensor& slot, const Tensor& grad) {
  const TensorImpl* impl = slot.impl();
  return slot.impl_ptr().use_count() == 1 && impl->storage && impl->storage.use_count() == 1 && !impl->dist &&
         !impl->pending && !grad.is_dtensor() && !requires_grad_fast(slot) && impl->dtype == grad.dtype() &&
         impl->shape == grad.shape() && slot.is_contiguous();
}

void GraphTask::deliver(NodeState& state, const Edge& edge, Tensor grad) {
  if (state.buffer.size() < edge.node->num_outputs) {
    std::vector<variable_list>& spare = scratch_->spare_lists;
    if (state.buffer.capacity() == 0 && !spare.empty()) {
      state.buffer = std::move(spare.back());
      spare.pop_back();
    }
    state.buffer.resize(edge.node->num_outputs);
  }
  Tensor& slot = state.buffer[edge.input_nr];
  if (!slot.defined()) slot = std::move(grad);
  else if (grad.defined()) {
    if (create_graph_) [[unlikely]] slot = recorded_add(slot, grad);  // see Note [create_graph]
    else if (owned_dense_like(slot, grad)) slot.add_(grad);  // same values as slot + grad, no new tensor
    else slot = accumulate_gradients(slot, grad);
  }
}

void GraphTask::execute(Node* node, variable_list* captured) {
  variable_list grads = std::move(state_of(node)->buffer);
  for (const Node::PreHook& pre : node->pre_hooks) {
    if (!pre.hook || pre.output_nr >= grads.size() || !grads[pre.output_nr].defined()) continue;
    Tensor replaced = pre.hook(grads[pre.output_nr]);
    if (replaced.defined()) grads[pre.output_nr] = std::move(replaced);
  }
  for (const Node::PreHook& pre : node->pre_hooks) {  // retain_grad after every hook, as in PyTorch
    auto impl = pre.retained.lock();
    if (!impl || pre.output_nr >= grads.size() || !grads[pre.output_nr].defined()) continue;
    Tensor& stored = impl->autograd->grad;
    const Tensor& g = grads[pre.output_nr];
    if (create_graph_) [[unlikely]] stored = stored.defined() ? recorded_add(stored, g) : recorded_clone(g);
    else stored = stored.defined() ? accumulate_gradients(stored, g) : kernels::contiguous_copy(g);
  }
  // A leaf's hooks, like a non-leaf's, see its gradient before autograd::grad captures it.
  if (node->is_accumulator && !grads.empty()) grads[0] = static_cast<AccumulateGrad*>(node)->run_hooks(std::move(grads[0]));
  for (const Capture& c : captures_)
    if (c.node == node && c.input_nr < grads.size()) (*captured)[c.index] = grads[c.input_nr];

  bool any_defined = false;
  for (const Tensor& g : grads) any_defined = any_defined || g.defined();
  bool leaf_sink = node->is_accumulator;
  if (leaf_sink && (!accumulate_ || !any_defined)) {
    recycle(grads);
    return;
  }

  variable_list outputs;
  if (create_graph_) [[unlikely]] {
    if (any_defined) {
      // See Note [create_graph]: the formula records; a non-recording one is refused a second time.
      const bool poison = !leaf_sink && !node->supports_double_backward;
      variable_list incoming;
      if (poison) incoming = grads;
      outputs = node->apply(std::move(grads));
      if (poison) poison_results(*node, incoming, outputs);
      WEFT_INTERNAL_ASSERT(leaf_sink || outputs.size() == node->next_edges.size(), "Function ", node->name(),
                           " returned ", outputs.size(), " gradients but has ", node->next_edges.size(), " inputs");
    }
  } else if (any_defined) {
    NoGradGuard no_grad;  // see Note [Saved tensors]: backward records no graph of its own
    outputs = node->apply(std::move(grads));
    if (!retain_graph_ && !leaf_sink) node->release_saved();  // an accumulator saves nothing (and is shared)
    WEFT_INTERNAL_ASSERT(leaf_sink || outputs.size() == node->next_edges.size(), "Function ", node->name(),
                         " returned ", outputs.size(), " gradients but has ", node->next_edges.size(), " inputs");
  }
  for (size_t i = 0; i < node->next_edges.size(); ++i) {
    const Edge& edge = node->next_edges[i];
    if (!edge.is_valid()) continue;
    NodeState* child = state_of(edge.node.get());  // a hook may have grown states_: look up again
    if (child == nullptr || !child->needed) continue;
    Tensor grad = i < outputs.size() ? validate(node, i, std::move(outputs[i])) : Tensor();
    child = state_of(edge.node.get());
    deliver(*child, edge, std::move(grad));
    if (--child->dependencies == 0) push_ready(edge.node.get());
  }
  recycle(grads);
  recycle(outputs);
}

void GraphTask::run(const std::vector<Edge>& root_edges, variable_list& root_grads, variable_list* captured) {
  // A backward run inside a checking local_map body computes gradients, whose types are the duals
  // of the forward ones: the forward rules must not judge them (Note [Local SPMD types]).
  spmd::Suspend untyped;
  // Gradients take the dtypes the forward chose, also when backward is called inside an autocast
  // scope (as PyTorch's recommendation to leave the scope first gives).
  AutocastSuspend no_autocast;
  // See Note [create_graph]: formulas record only under grad mode; without it, apply() turns it off.
  std::optional<EnableGradGuard> recording;
  if (create_graph_) recording.emplace();
  discover(root_edges);
  mark_needed();
  for (size_t i = 0; i < root_edges.size(); ++i) {
    if (!root_edges[i].is_valid()) continue;
    NodeState* st = state_of(root_edges[i].node.get());
    if (st->needed) deliver(*st, root_edges[i], std::move(root_grads[i]));
  }
  for (const Edge& root : root_edges) {
    NodeState* st = state_of(root.node.get());
    if (st && st->needed && st->dependencies == 0 && !st->queued) {
      st->queued = true;
      push_ready(st->node);
    }
  }
  while (!ready_.empty()) {
    std::pop_heap(ready_.begin(), ready_.end());
    Node* node = ready_.back().second;
    ready_.pop_back();
    execute(node, captured);
  }
}

std::vector<Edge> root_edges_of(const variable_list& outputs, variable_list& grads, const char* op) {
  WEFT_CHECK(grads.empty() || grads.size() == outputs.size(), op, ": got ", outputs.size(), " outputs but ",
             grads.size(), " gradients");
  grads.resize(outputs.size());
  std::vector<Edge> edges;
  edges.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    WEFT_CHECK(out.defined(), op, ": output ", i, " is undefined");
    WEFT_CHECK(requires_grad_fast(out), op, ": element ", i,
               " of tensors does not require grad and does not have a grad_fn");
    if (!grads[i].defined()) {
      WEFT_CHECK(out.numel() == 1, op, ": grad can be implicitly created only for outputs with one element, "
                 "but output ", i, " has shape ", out.shape());
      WEFT_CHECK(!out.is_dtensor(), op, ": pass an explicit gradient for a DTensor output");
      grads[i] = ones(out.shape(), out.dtype());
    } else {
      WEFT_CHECK(grads[i].shape() == out.shape(), op, ": gradient ", i, " has shape ", grads[i].shape(),
                 " but the output has shape ", out.shape());
    }
    edges.push_back(gradient_edge(out));
  }
  return edges;
}

}  // namespace

void backward(const variable_list& outputs, const variable_list& grad_outputs, bool retain_graph, bool create_graph) {
  variable_list grads = grad_outputs;
  std::vector<Edge> edges = root_edges_of(outputs, grads, "backward");
  GraphTask task(retain_graph, /*accumulate=*/true, create_graph);
  task.run(edges, grads, nullptr);
}

variable_list grad(const variable_list& outputs, const variable_list& inputs, const variable_list& grad_outputs,
                   bool retain_graph, bool allow_unused, bool create_graph) {
  variable_list grads = grad_outputs;
  std::vector<Edge> edges = root_edges_of(outputs, grads, "autograd::grad");
  GraphTask task(retain_graph, /*accumulate=*/false, create_graph);
  std::vector<Edge> input_edges;
  for (size_t i = 0; i < inputs.size(); ++i) {
    WEFT_CHECK(requires_grad_fast(inputs[i]), "autograd::grad: input ", i, " does not require grad");
    input_edges.push_back(gradient_edge(inputs[i]));
    task.add_capture(input_edges.back(), i);
  }
  variable_list captured(inputs.size());
  task.run(edges, grads, &captured);
  for (size_t i = 0; i < inputs.size(); ++i)
    WEFT_CHECK(allow_unused || captured[i].defined(), "autograd::grad: one of the differentiated tensors "
               "(input ", i, ") appears to not have been used in the graph. Set allow_unused=true if this is "
               "the desired behavior.");
  return captured;
}

}  // namespace weft::autograd
