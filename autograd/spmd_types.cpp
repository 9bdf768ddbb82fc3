// The local SPMD type rules (Note [Local SPMD types]): one place for every op's propagation, the
// undecided inputs' union-find, and the errors.
#include "autograd/spmd_types.h"

#include <atomic>
#include <cctype>

#include "autograd/node.h"
#include "framework/error.h"

namespace weft::spmd {

[[gnu::tls_model("initial-exec")]] constinit thread_local Checker* Active::checker_ = nullptr;

namespace {

// An operand's type on one axis as the rules see it. Neutral: untyped, or R/I/undecided with no
// gradient to get wrong.
enum Kind : uint8_t { kR = 0, kI = 1, kV = 2, kP = 3, kUndecided = 4, kNeutral = 5 };
constexpr uint8_t kUntypedResult = 6;

Type raw_type(uint16_t types, int64_t axis) { return static_cast<Type>((types >> (2 * axis)) & 3); }

std::string a_type(Type t) { return (t == Type::Invariant ? "an " : "a ") + std::string(type_name(t)); }

std::string input_of(uint16_t origin) {
  return origin ? " (local_map input " + std::to_string(origin - 1) + ")" : std::string();
}

constexpr const char* kFixPartial =
    "all_reduce it first (funcol::all_reduce, or reduce_from_parallel_region in a Megatron layer), or return "
    "it from the body with a Partial out placement";

std::string fix_invariant(uint16_t origin, const std::string& axis) {
  std::string input = origin ? "input " + std::to_string(origin - 1) : std::string("the input it comes from");
  return "declare " + input + "'s grad placement Partial on \"" + axis +
         "\" (or omit in_grad_placements to let local_map derive it), or pass the Invariant value through "
         "copy_to_parallel_region first";
}

}  // namespace

const char* type_name(Type type) {
  switch (type) {
    case Type::Replicate: return "Replicate";
    case Type::Invariant: return "Invariant";
    case Type::Varying: return "Varying";
    case Type::Partial: return "Partial";
  }
  return "?";
}

std::string op_name_of_node(const std::string& node_name) {
  std::string name = node_name;
  if (size_t colon = name.rfind("::"); colon != std::string::npos) name = name.substr(colon + 2);
  if (name.size() > 8 && name.ends_with("Backward")) name.resize(name.size() - 8);
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c) && i > 0) out += '_';
    out += static_cast<char>(std::tolower(c));
  }
  return out;
}

struct Checker::Operand {
  bool defined = false;
  bool typed = false;
  bool grad = false;
  uint8_t undecided = 0;
  uint16_t types = 0;
  uint16_t origin = 0;
};

struct Checker::AxisScan {
  SmallVector<Operand, 4> operands;
};

Checker::Checker(const std::vector<std::string>& axis_names, size_t mesh_key, size_t num_inputs)
    : names_(&axis_names), mesh_key_(mesh_key), ndim_(static_cast<int64_t>(axis_names.size())) {
  WEFT_CHECK(ndim_ <= kMaxAxes, "local_map: SPMD type checking supports meshes of up to ", kMaxAxes,
             " dims but got ", ndim_, "; pass check_types = false");
  // One counter for all threads: a tensor typed by a body on one thread must read as untyped in a
  // body running on another. 0 marks tensors never typed.
  static constinit std::atomic<uint32_t> last_epoch{0};
  do epoch_ = last_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  while (epoch_ == 0);
  parent_.resize(num_inputs + 1);
  for (size_t i = 0; i < parent_.size(); ++i) parent_[i] = static_cast<uint16_t>(i);
  settled_.resize(num_inputs + 1, 0);
}

Checker::Operand Checker::read(const Tensor& t) const {
  Operand o;
  if (!t.defined()) return o;
  o.defined = true;
  const TensorImpl& impl = *t.impl();
  if (impl.spmd_epoch != epoch_) return o;
  o.typed = true;
  o.grad = t.requires_grad();
  o.undecided = impl.spmd_undecided;
  o.types = impl.spmd_types;
  o.origin = impl.spmd_origin;
  return o;
}

uint16_t Checker::find(uint16_t cls) const {
  while (parent_[cls] != cls) cls = parent_[cls] = parent_[parent_[cls]];
  return cls;
}

void Checker::fail(const OpName& what, int64_t axis, const std::string& problem, const char* fix) const {
  WEFT_ERROR("local_map: ", what.str(), " on mesh dim \"", axis_name(axis), "\" ", problem, "; ", fix);
}

void Checker::settle(uint16_t cls, int64_t axis, Type flavour, const OpName& context) {
  cls = find(cls);
  const unsigned want = flavour == Type::Replicate ? 1 : 2, shift = static_cast<unsigned>(2 * axis);
  const unsigned have = (settled_[cls] >> shift) & 3u;
  if (have == 0) settled_[cls] = static_cast<uint16_t>(settled_[cls] | (want << shift));
  if (have == 0 || have == want) return;
  fail_undecided(context, axis, cls);
}

void Checker::fail_undecided(const OpName& op, int64_t axis, uint16_t cls) const {
  fail(op, axis,
       "uses local_map input " + std::to_string(find(cls) - 1) +
           " (Replicate, no grad placement given) both as Invariant and with Varying or Replicate values, "
           "which make its gradient a pending sum",
       "declare its grad placement, or pass the Invariant use through copy_to_parallel_region");
}

void Checker::unite(uint16_t a, uint16_t b, const OpName& context) {
  a = find(a);
  b = find(b);
  if (a == b) return;
  for (int64_t axis = 0; axis < ndim_; ++axis) {
    const unsigned shift = static_cast<unsigned>(2 * axis);
    const unsigned sb = (settled_[b] >> shift) & 3u;
    if (sb) settle(a, axis, sb == 1 ? Type::Replicate : Type::Invariant, context);
  }
  parent_[b] = a;
}

uint8_t Checker::scan_axis(const AxisScan& scan, int64_t axis, Linearity linearity, const OpName& op,
                           uint16_t& origin) {
  const size_t n = scan.operands.size();
  size_t defined = 0, partials = 0, varyings = 0, product_partials = 0, product_varyings = 0, first_partial = n;
  bool replicate = false, invariant = false, invariant_settled = false;
  uint16_t invariant_origin = 0;
  SmallVector<uint16_t, 4> undecided;
  Type other = Type::Replicate;  // a non-Partial operand met, for messages (a constant reads as Replicate)
  size_t fallback = n;           // the first typed operand
  for (size_t j = 0; j < n; ++j) {
    const Operand& o = scan.operands[j];
    if (!o.defined) continue;
    ++defined;
    if (o.typed && fallback == n) fallback = j;
    if (!o.typed) continue;
    uint16_t cls = 0;
    Kind kind;
    if ((o.undecided >> axis) & 1) {
      cls = find(o.origin);
      const unsigned s = (settled_[cls] >> (2 * axis)) & 3u;
      kind = s == 0 ? kUndecided : s == 1 ? kR : kI;
    } else {
      kind = static_cast<Kind>(raw_type(o.types, axis));
    }
    if (!o.grad && (kind == kR || kind == kI || kind == kUndecided)) continue;  // neutral
    const bool in_product = linearity != Linearity::Affine || j + 1 < n;
    switch (kind) {
      case kP:
        ++partials;
        product_partials += in_product;
        if (first_partial == n) first_partial = j;
        break;
      case kV:
        ++varyings;
        product_varyings += in_product;
        other = Type::Varying;
        break;
      case kR: replicate = true; break;
      case kI:
        if (!invariant) invariant_settled = (o.undecided >> axis) & 1;
        invariant = true;
        if (!invariant_origin) invariant_origin = o.origin;
        if (other != Type::Varying) other = Type::Invariant;
        break;
      case kUndecided: undecided.push_back(cls); break;
      default: break;
    }
  }
  // Where a Partial operand may go (Note [Local SPMD types]).
  const OpName& name = op;
  bool partial_out = false;
  if (partials) {
    auto partial_times_partial = [&] {
      fail(name, axis, "multiplies two Partial operands: (sum a)(sum b) is not sum(a b)", "all_reduce one of them first");
    };
    auto partial_times_varying = [&] {
      fail(name, axis, "multiplies a Partial operand by a Varying one: a pending sum does not distribute over "
           "per-rank factors", "all_reduce the Partial operand first");
    };
    auto partial_plus_other = [&] {
      fail(name, axis, "adds a Partial operand to " + a_type(other) + " one: the " + type_name(other) +
           " term would be counted once per rank", "all_reduce the Partial operand first (funcol::all_reduce or "
           "reduce_from_parallel_region), or reinterpret the other as Partial if each rank holds one term");
    };
    switch (linearity) {
      case Linearity::NonLinear:
      case Linearity::Own:  // never applied (record skips it); the safe reading
        fail(name, axis, "got a Partial operand (a pending sum over the ranks), but is not linear in it", kFixPartial);
      case Linearity::Linear:
        if (partials != defined) partial_plus_other();
        break;
      case Linearity::Multilinear:
        if (partials > 1) partial_times_partial();
        if (varyings) partial_times_varying();
        break;
      case Linearity::LinearInFirst:
        if (first_partial != 0 || partials > 1)
          fail(name, axis, "divides by a Partial operand (a pending sum over the ranks)", kFixPartial);
        if (varyings) partial_times_varying();
        break;
      case Linearity::Affine: {
        if (product_partials > 1) partial_times_partial();
        if (product_partials && product_varyings) partial_times_varying();
        const bool bias = n >= 2 && scan.operands[n - 1].defined;
        if (bias && (product_partials > 0) != (partials > product_partials)) partial_plus_other();
        break;
      }
    }
    partial_out = true;
  }
  // Which of R and I, and what the undecided inputs become.
  auto settle_all = [&](Type flavour) {
    for (uint16_t cls : undecided) settle(cls, axis, flavour, op);
  };
  if (invariant && invariant_settled && (partial_out || varyings || replicate))
    fail_undecided(op, axis, invariant_origin);
  if (partial_out || varyings) {
    if (invariant) {
      fail(op, axis,
           "mixes an Invariant operand" + input_of(invariant_origin) + " with " +
               a_type(partial_out ? Type::Partial : Type::Varying) + " one: its gradient would " +
               (partial_out ? "be a pending sum" : "differ per rank") +
               ", but Invariant promises the same gradient on every rank",
           fix_invariant(invariant_origin, axis_name(axis)).c_str());
    }
    settle_all(Type::Replicate);
    return partial_out ? kP : kV;
  }
  if (replicate && invariant) {
    fail(op, axis,
         "mixes an Invariant operand" + input_of(invariant_origin) +
             " with a Replicate one: its gradient would be a pending sum, but Invariant promises the same "
             "gradient on every rank",
         fix_invariant(invariant_origin, axis_name(axis)).c_str());
  }
  if (replicate || invariant) {
    settle_all(replicate ? Type::Replicate : Type::Invariant);
    if (invariant) origin = invariant_origin;
    return replicate ? kR : kI;
  }
  if (!undecided.empty()) {
    for (uint16_t cls : undecided) unite(undecided[0], cls, op);
    origin = find(undecided[0]);
    return kUndecided;
  }
  if (fallback == n) return kUntypedResult;
  // Every operand neutral: the first typed one's own type (no gradient can be wrong here).
  const Operand& o = scan.operands[fallback];
  origin = o.origin;
  return (o.undecided >> axis) & 1 ? static_cast<uint8_t>(kUndecided) : static_cast<uint8_t>(raw_type(o.types, axis));
}

void Checker::write(const Tensor& out, uint16_t types, uint8_t undecided, uint16_t origin) const {
  TensorImpl& impl = *out.impl();
  impl.spmd_types = types;
  impl.spmd_undecided = undecided;
  impl.spmd_origin = origin;
  impl.spmd_epoch = epoch_;
}

// The common case: every typed operand has the same type on every axis, none is undecided and none
// Partial. No rule can fail (I meets only I, R only R, V only V; untyped operands are neutral), so
// the output takes that type, with the origin scan_axis would give it: per axis, none for V or for
// R that needs a gradient, the first gradient-carrying operand's for I, else the first operand's.
// It reads the operands' impls directly: most ops of a body end here, so it builds no scan.
bool Checker::apply_uniform(const Tensor& out, const Tensor* const* operands, size_t count) const {
  const TensorImpl* first = nullptr;
  const TensorImpl* first_grad = nullptr;
  for (size_t i = 0; i < count; ++i) {
    const TensorImpl* impl = operands[i]->impl();
    if (impl == nullptr || impl->spmd_epoch != epoch_) continue;  // undefined or untyped: neutral
    if (impl->spmd_undecided) return false;
    if (!first) first = impl;
    else if (impl->spmd_types != first->spmd_types) return false;
    if (!first_grad && autograd::requires_grad_fast(*operands[i])) first_grad = impl;
  }
  if (!first) {
    out.impl()->spmd_epoch = 0;  // an in-place result or a view may carry an older type
    return true;
  }
  const uint16_t types = first->spmd_types;
  if (types & (types >> 1) & 0x5555u) return false;  // some axis is Partial (0b11)
  uint16_t origin = 0;
  for (int64_t axis = 0; axis < ndim_ && !origin; ++axis) {
    const Type t = raw_type(types, axis);
    if (t == Type::Varying || (t == Type::Replicate && first_grad)) continue;
    origin = t == Type::Invariant && first_grad ? first_grad->spmd_origin : first->spmd_origin;
  }
  write(out, types, 0, origin);
  return true;
}

void Checker::apply(Linearity linearity, const OpName& op, const Tensor& out, const Tensor* const* operands,
                    size_t count) {
  if (!out.defined()) return;
  if (apply_uniform(out, operands, count)) return;
  AxisScan scan;
  for (size_t i = 0; i < count; ++i) scan.operands.push_back(read(*operands[i]));
  uint16_t types = 0, origin = 0, undecided_class = 0;
  uint8_t undecided = 0;
  for (int64_t axis = 0; axis < ndim_; ++axis) {
    uint16_t axis_origin = 0;
    const uint8_t result = scan_axis(scan, axis, linearity, op, axis_origin);
    if (result == kUndecided) {
      undecided = static_cast<uint8_t>(undecided | (1u << axis));
      if (undecided_class) unite(undecided_class, axis_origin, op);
      else undecided_class = axis_origin;
      continue;
    }
    types = static_cast<uint16_t>(types | (result << (2 * axis)));
    if (!origin) origin = axis_origin;
  }
  write(out, types, undecided, undecided_class ? find(undecided_class) : origin);
}

void Checker::type_input(const Tensor& local, size_t input, const Type* types, uint8_t undecided) {
  uint16_t bits = 0;
  for (int64_t axis = 0; axis < ndim_; ++axis) bits = static_cast<uint16_t>(bits | (static_cast<unsigned>(types[axis]) << (2 * axis)));
  write(local, bits, undecided, static_cast<uint16_t>(input + 1));
}

void Checker::expect(const Tensor& x, int64_t axis, TypeSet accept, const OpName& where, const char* fix) {
  if (!typed(x)) return;
  const Operand o = read(x);
  const TypeSet flavours = type_bit(Type::Replicate) | type_bit(Type::Invariant);
  if ((o.undecided >> axis) & 1) {
    const uint16_t cls = find(o.origin);
    const unsigned s = (settled_[cls] >> (2 * axis)) & 3u;
    if (s || !o.grad) {
      const Type t = s == 2 ? Type::Invariant : Type::Replicate;
      if (!(accept & flavours) || (o.grad && !(accept & type_bit(t))))
        fail(where, axis, "got " + a_type(t) + " value" + input_of(o.origin), fix);
      return;
    }
    const bool r = accept & type_bit(Type::Replicate), i = accept & type_bit(Type::Invariant);
    if (!r && !i) fail(where, axis, "got a Replicate value" + input_of(o.origin), fix);
    if (r != i) settle(cls, axis, r ? Type::Replicate : Type::Invariant, where);
    return;
  }
  const Type t = raw_type(o.types, axis);
  const bool flavour = t == Type::Replicate || t == Type::Invariant;
  if (accept & type_bit(t)) return;
  if (flavour && !o.grad && (accept & flavours)) return;  // no gradient to get wrong
  fail(where, axis, "got " + a_type(t) + " value" + (flavour ? input_of(o.origin) : std::string()), fix);
}

void Checker::retype(const Tensor& out, const Tensor& x, int64_t axis, Type type) {
  if (!typed(x)) return;
  const Operand o = read(x);
  const unsigned shift = static_cast<unsigned>(2 * axis);
  const auto types = static_cast<uint16_t>((o.types & ~(3u << shift)) | (static_cast<unsigned>(type) << shift));
  const auto undecided = static_cast<uint8_t>(o.undecided & ~(1u << axis));
  write(out, types, undecided, o.origin);
}

std::optional<Type> Checker::type_of(const Tensor& x, int64_t axis) const {
  if (!typed(x)) return std::nullopt;
  const Operand o = read(x);
  if ((o.undecided >> axis) & 1) return resolution(static_cast<size_t>(o.origin - 1), axis).value_or(Type::Replicate);
  return raw_type(o.types, axis);
}

std::optional<Type> Checker::resolution(size_t input, int64_t axis) const {
  const unsigned s = (settled_[find(static_cast<uint16_t>(input + 1))] >> (2 * axis)) & 3u;
  if (s == 0) return std::nullopt;
  return s == 1 ? Type::Replicate : Type::Invariant;
}

Scope::Scope(Checker* checker) : previous_(Active::checker_) { Active::checker_ = checker; }
Scope::~Scope() { Active::checker_ = previous_; }

}  // namespace weft::spmd
