// Local SPMD types: what each local tensor inside a checking local_map body is across each mesh
// axis, and the rules every op propagates them by. local_map (distributed/) installs a Checker
// for the duration of its body; ops reach it through autograd::record and spmd::note_op, so this
// layer never names the distributed one. See docs/spmd_types.md.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "framework/small_vector.h"
#include "framework/tensor.h"

namespace weft::spmd {

// Note [Local SPMD types]
// Per mesh axis a local tensor is one of four types; the type fixes what backward must do:
//   Replicate  (R) the same on every rank; its gradient is a pending sum (P)
//   Invariant  (I) the same on every rank; its gradient is the same on every rank (I)
//   Varying    (V) differs per rank; its gradient is V
//   Partial    (P) a pending sum over the axis; its gradient is the same on every rank
// No op inside a body communicates, so the rules refuse every combination whose correct gradient
// would need communication: I mixes only with I; P flows only through ops linear in it (each op's
// backward node declares its Linearity; one that declares nothing is NonLinear). Operands that
// need no gradient are neutral between R and I (no gradient can be wrong), never between R/I, V
// and P (forward values are). Tensors made inside the body are untyped: neutral everywhere.
// A Replicate input whose grad placement was not given is "undecided" on that axis until the body
// first mixes it: with V or R values it becomes R (its gradient is Partial), with I values I.
// Inputs mixed together share their fate (a union-find over input indices), and local_map reads
// each input's resolution to derive in_grad_placements.
// Storage: 2 bits per axis, an undecided mask, an origin and a 32-bit epoch in TensorImpl; the
// fields are valid only while spmd_epoch is the running Checker's (epochs are unique across
// threads and calls), so a tensor kept from another call reads as untyped. Cost: one thread-local pointer read per op while no checker runs.

enum class Type : uint8_t { Replicate = 0, Invariant = 1, Varying = 2, Partial = 3 };
const char* type_name(Type type);
inline constexpr int64_t kMaxAxes = 8;

// How an op's output depends on its differentiable operands (those it records), which decides
// where a Partial operand may go.
enum class Linearity : uint8_t {
  NonLinear,      // no Partial operand (the default)
  Linear,         // jointly linear (add, sum, views, cat): all operands Partial, or none
  Multilinear,    // linear in each separately (mul, matmul): one Partial at most, no Varying beside it
  LinearInFirst,  // div: a Partial numerator over a divisor that is neither Partial nor Varying
  Affine,         // linear(x, W, b): a Multilinear product of all but the last, plus the last
  Own,            // the op types its output itself (the typed collectives): record leaves it alone
};

template <class NodeT>
constexpr Linearity linearity_of() {
  if constexpr (requires { NodeT::spmd_linearity; }) return NodeT::spmd_linearity;
  else return Linearity::NonLinear;
}

// A set of types (what an output placement or a collective accepts).
using TypeSet = uint8_t;
constexpr TypeSet type_bit(Type t) { return static_cast<TypeSet>(1u << static_cast<unsigned>(t)); }

// An op's name for an error message, computed only when one is raised.
struct OpName {
  const char* literal = nullptr;
  const void* context = nullptr;
  std::string (*make)(const void*) = nullptr;
  std::string str() const { return literal ? std::string(literal) : make(context); }
};
// "GeluBackward" -> "gelu", "LogSoftmaxBackward" -> "log_softmax".
std::string op_name_of_node(const std::string& node_name);

class Checker {
 public:
  // axis_names: the mesh's dim names (one per axis, at most kMaxAxes); mesh_key identifies the
  // mesh, so that a collective can tell whether it runs over one of these axes.
  Checker(const std::vector<std::string>& axis_names, size_t mesh_key, size_t num_inputs);
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  int64_t ndim() const { return ndim_; }
  const std::string& axis_name(int64_t axis) const { return (*names_)[static_cast<size_t>(axis)]; }
  size_t mesh_key() const { return mesh_key_; }
  bool typed(const Tensor& t) const { return t.defined() && t.impl()->spmd_epoch == epoch_; }

  // Boundary: `local` is local_map input `input`, of type types[a] on each axis a; the axes whose
  // bit is set in `undecided` are Replicate inputs without a declared grad placement.
  void type_input(const Tensor& local, size_t input, const Type* types, uint8_t undecided);
  // One op's rule: reads the operands' types, writes the output's; throws weft::Error naming the
  // op, the axis, the types met and the fix at a violation.
  void apply(Linearity linearity, const OpName& op, const Tensor& out, const Tensor* const* operands, size_t count);
  // A collective's or an output's check of x on `axis` against `accept`: an undecided axis is
  // settled to the one of R and I that `accept` allows. `what` names the place, `fix` the remedy.
  void expect(const Tensor& x, int64_t axis, TypeSet accept, const OpName& what, const char* fix);
  // out takes x's type, with `type` on `axis` (a collective's, or reinterpret's, result).
  void retype(const Tensor& out, const Tensor& x, int64_t axis, Type type);
  // Whether x's type on `axis` is settled (not an undecided Replicate) and in `accept`: then
  // expect(x, axis, accept, ...) would do nothing. Untyped x reads as accepted.
  bool accepts(const Tensor& x, int64_t axis, TypeSet accept) const {
    if (!typed(x)) return true;
    const TensorImpl& impl = *x.impl();
    if ((impl.spmd_undecided >> axis) & 1) return false;
    return (accept >> ((impl.spmd_types >> (2 * axis)) & 3u)) & 1u;
  }
  // x's type on axis as it stands (an undecided axis reads as Replicate until settled otherwise);
  // nullopt when x is untyped.
  std::optional<Type> type_of(const Tensor& x, int64_t axis) const;
  // Input `input`'s settled flavour on `axis`: Replicate, Invariant, or nullopt while undecided.
  std::optional<Type> resolution(size_t input, int64_t axis) const;

 private:
  struct Operand;
  struct AxisScan;
  Operand read(const Tensor& t) const;
  uint16_t find(uint16_t cls) const;
  void settle(uint16_t cls, int64_t axis, Type flavour, const OpName& context);
  void unite(uint16_t a, uint16_t b, const OpName& context);
  uint8_t scan_axis(const AxisScan& scan, int64_t axis, Linearity linearity, const OpName& op, uint16_t& origin);
  bool apply_uniform(const Tensor& out, const Tensor* const* operands, size_t count) const;
  void write(const Tensor& out, uint16_t types, uint8_t undecided, uint16_t origin) const;
  [[noreturn]] void fail_undecided(const OpName& op, int64_t axis, uint16_t cls) const;
  [[noreturn]] void fail(const OpName& what, int64_t axis, const std::string& problem, const char* fix) const;

  const std::vector<std::string>* names_;
  size_t mesh_key_;
  int64_t ndim_;
  uint32_t epoch_;
  // Union-find over undecided inputs (class = input + 1) and, per class, 2 bits per axis:
  // 0 undecided, 1 Replicate, 2 Invariant.
  mutable SmallVector<uint16_t, 16> parent_;
  SmallVector<uint16_t, 16> settled_;
};

// The checker of the running body on this thread, or null.
class Active {
 public:
  static Checker* get() { return checker_; }

 private:
  friend class Scope;
  // initial-exec and constinit as GradMode's flag: read on every op (see autograd/grad_mode.h).
  [[gnu::tls_model("initial-exec")]] static constinit thread_local Checker* checker_;
};
inline Checker* active() { return Active::get(); }

// Installs `checker` (null: none) for its scope; nested scopes restore the outer one.
class Scope {
 public:
  explicit Scope(Checker* checker);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Checker* previous_;
};

// Runs `body` with no checker (the body's backward, code that must not be typed).
class Suspend {
 public:
  Suspend() : scope_(nullptr) {}

 private:
  Scope scope_;
};

// For ops that make their node themselves, or whose rule depends on their arguments (in-place
// ops): `linearity`'s rule, under the op's own name.
inline void check_op(Linearity linearity, const char* name, const Tensor& out,
                     std::initializer_list<const Tensor*> operands) {
  if (Checker* checker = active()) [[unlikely]]
    checker->apply(linearity, OpName{name}, out, operands.begin(), operands.size());
}
// For ops that record no node (comparisons, argmax, integer results): the NonLinear rule.
inline void note_op(const char* name, const Tensor& out, std::initializer_list<const Tensor*> operands) {
  check_op(Linearity::NonLinear, name, out, operands);
}

namespace detail {
inline void collect(SmallVector<const Tensor*, 4>& out, const Tensor& t) { out.push_back(&t); }
inline void collect(SmallVector<const Tensor*, 4>& out, const std::vector<Tensor>& list) {
  for (const Tensor& t : list) out.push_back(&t);
}

// record<NodeT>'s check: the op's name is the node's (made on a scratch node, with the op's init,
// when none was recorded: only on the way to an error).
template <class NodeT, class Init, class... Inputs>
void check_node(Checker& checker, const NodeT* node, const Tensor& out, Init& init, const Inputs&... inputs) {
  if constexpr (linearity_of<NodeT>() == Linearity::Own) return;
  SmallVector<const Tensor*, 4> operands;
  (collect(operands, inputs), ...);
  struct Context {
    const NodeT* node;
    Init* init;
  } context{node, &init};
  OpName name{nullptr, &context, [](const void* p) {
                const auto& c = *static_cast<const Context*>(p);
                if (c.node) return op_name_of_node(c.node->name());
                NodeT scratch;
                (*c.init)(scratch);
                return op_name_of_node(scratch.name());
              }};
  checker.apply(linearity_of<NodeT>(), name, out, operands.data(), operands.size());
}
}  // namespace detail

}  // namespace weft::spmd
