// Replays a conformance script's PyTorch cases (tests/conformance/conformance.py) through weft.
//
// A family's test defines an OpTable: for each op name a script uses ("clamp", "sum.dims"), how to
// call weft with a case's arguments. run_conformance runs the script with /usr/bin/python3, calls
// every case, and compares: the outputs' dtypes, shapes and values (NaN equal to NaN, infinities by
// sign) within the dtype's tolerance; which argument's storage each output shares, where the case
// asks (views=True); the gradients of sum(output * weight) for the arguments the
// case marks; and, where torch raised, that weft raises a weft::Error naming the op. A case whose
// op is not in the table fails, so a script cannot outgrow its test unnoticed.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"
#include "tests/python_oracle.h"  // skip_without_torch, for the families

namespace weft::test::conformance {

using json = nlohmann::json;

// One case's arguments, as weft values. Tensor arguments are numbered in order (positional
// arguments depth-first, then keyword arguments by name), which is also the order of their grads.
class Args {
 public:
  Args(const json& record, std::vector<Tensor>& grad_inputs);

  size_t size() const { return args_.size(); }
  // Every tensor argument, in the numbering above (for the views check).
  const std::vector<Tensor>& all_tensors() const { return ordered_; }
  bool is_none(size_t i) const { return args_.at(i).is_null(); }

  Tensor tensor(size_t i) const;
  std::vector<Tensor> tensors(size_t i) const;  // a list of tensors (cat, stack, einsum)
  // An argument as the script encoded it, for a family that reads its own spelling (an index list),
  // and the tensor of a tensor argument found inside it.
  const json& raw(size_t i) const { return args_.at(i); }
  Tensor tensor_of(const json& arg) const;
  double real(size_t i) const;
  int64_t integer(size_t i) const;
  bool boolean(size_t i) const;
  Scalar scalar(size_t i) const;  // an int stays an int, a float a float, a bool a bool
  std::string string(size_t i) const;
  Shape ints(size_t i) const;  // a list of ints (or one int, as a list of one)

  bool has(const std::string& name) const;  // present and not None
  Tensor kw_tensor(const std::string& name) const;
  double kw_real(const std::string& name, double otherwise) const;
  int64_t kw_integer(const std::string& name, int64_t otherwise) const;
  bool kw_boolean(const std::string& name, bool otherwise) const;
  std::optional<Scalar> kw_scalar(const std::string& name) const;
  std::string kw_string(const std::string& name, const std::string& otherwise) const;
  Shape kw_ints(const std::string& name) const;

 private:
  const json& kw(const std::string& name) const;

  const json& args_;
  const json& kwargs_;
  std::map<const json*, Tensor> built_;  // every tensor argument, made once by the constructor
  std::vector<Tensor> ordered_;          // the same, in order
};

using OpFn = std::function<std::vector<Tensor>(const Args&)>;
using OpTable = std::map<std::string, OpFn>;

// The dtype a script spells `name` ("float32", as conformance.py's DTYPE_NAMES); fails the test
// for a name weft does not know.
DType dtype_named(const std::string& name);

// A tensor from the script's encoding, in its layout: contiguous, transposed (last two dims swapped
// in memory) or strided (every other element of a buffer twice as long). With `base`, the leaf
// the layout is a view of is returned there (for gradients).
Tensor decode_tensor(const json& t, bool requires_grad = false, Tensor* base = nullptr);

// Runs `script` (a path) and replays its cases through `table`.
void run_conformance(const std::string& script, const OpTable& table);

// `op(args)` for a one-output op.
inline std::vector<Tensor> one(Tensor t) { return {std::move(t)}; }

}  // namespace weft::test::conformance
