#include "tests/conformance/conformance.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/engine.h"
#include "framework/error.h"
#include "framework/factories.h"
#include "ops/ops.h"
#include "tests/python_oracle.h"

namespace weft::test::conformance {

DType dtype_named(const std::string& name) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (dtype_name(static_cast<DType>(i)) == name) return static_cast<DType>(i);
  FAIL("the conformance script names a dtype weft does not know: " << name);
  return kFloat64;
}

namespace {

double number_of(const json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    FAIL("not a number in the conformance JSON: " << s);
  }
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return v.get<double>();
}

bool is_tensor_arg(const json& a) { return a.is_object() && a.contains("t"); }

// Every tensor argument in order: positional depth-first, then keyword arguments by name (json
// objects iterate sorted by key, as conformance.py orders them).
void collect_tensor_args(const json& a, std::vector<const json*>& out) {
  if (is_tensor_arg(a)) {
    out.push_back(&a);
  } else if (a.is_array()) {
    for (const auto& x : a) collect_tensor_args(x, out);
  }
}

std::string base_op(const std::string& op) { return op.substr(0, op.find('.')); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string shape_string(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

struct Tolerance {
  double rtol, atol;
};

Tolerance default_tolerance(DType d) {
  switch (d) {
    case kFloat64: return {1e-7, 1e-9};
    case kFloat32: return {1e-5, 1e-5};
    case kFloat16: return {1e-3, 1e-3};
    case kBFloat16: return {1.6e-2, 1e-2};
    default: return {0, 0};
  }
}

bool close(double got, double want, Tolerance tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol.atol + tol.rtol * std::fabs(want);
}

// "" when `got` matches the encoded `want`, else what differs.
std::string compare(const Tensor& got, const json& want, const json& record, const char* what) {
  std::ostringstream o;
  if (!got.defined()) return std::string(what) + ": weft gave an undefined tensor";
  const DType want_dtype = dtype_named(want["dtype"]);
  Shape want_shape;
  for (const auto& s : want["shape"]) want_shape.push_back(s.get<int64_t>());
  if (got.dtype() != want_dtype) {
    o << what << ": dtype " << dtype_name(got.dtype()) << ", torch gives " << dtype_name(want_dtype);
    return o.str();
  }
  if (got.shape() != want_shape) {
    o << what << ": shape " << shape_string(got.shape()) << ", torch gives " << shape_string(want_shape);
    return o.str();
  }
  Tolerance tol = default_tolerance(want_dtype);
  if (record.contains("rtol")) tol.rtol = record["rtol"].get<double>();
  if (record.contains("atol")) tol.atol = record["atol"].get<double>();
  const json& data = want["data"];
  size_t bad = 0, first = 0;
  double first_got = 0, first_want = 0;
  if (is_floating(want_dtype)) {
    const std::vector<double> values = got.to(kFloat64).contiguous().to_vector<double>();
    for (size_t i = 0; i < values.size(); ++i) {
      const double w = number_of(data[i]);
      if (!close(values[i], w, tol) && bad++ == 0) first = i, first_got = values[i], first_want = w;
    }
  } else {
    const std::vector<int64_t> values = got.to(kInt64).contiguous().to_vector<int64_t>();
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t w = data[i].is_boolean() ? data[i].get<bool>() : data[i].get<int64_t>();
      if (values[i] != w && bad++ == 0) first = i, first_got = double(values[i]), first_want = double(w);
    }
  }
  if (bad == 0) return "";
  o << what << ": " << bad << " of " << data.size() << " elements differ; the first, flat index " << first
    << ": weft " << first_got << ", torch " << first_want << " (rtol " << tol.rtol << ", atol " << tol.atol
    << ")";
  return o.str();
}

// An argument as a reader wants it: tensors as dtype[shape] and layout, without their data.
json summary(const json& a) {
  if (is_tensor_arg(a)) {
    const json& t = a["t"];
    std::string s = t["dtype"].get<std::string>() + t["shape"].dump();
    if (t.value("layout", "contiguous") != "contiguous") s += " " + t["layout"].get<std::string>();
    if (t.value("grad", false)) s += " grad";
    return s;
  }
  if (a.is_array() || a.is_object()) {
    json out = a;
    for (auto& [key, value] : out.items()) value = summary(value);
    return out;
  }
  return a;
}

std::string describe(const json& record) {
  return record["op"].get<std::string>() + summary(record["args"]).dump() + " " + summary(record["kwargs"]).dump();
}

// Runs one case; returns what went wrong, or "".
std::string run_case(const json& record, const OpTable& table) {
  const std::string op = record["op"];
  const auto fn = table.find(op);
  if (fn == table.end()) return "the test's OpTable has no entry for this op";
  std::vector<Tensor> grad_inputs;
  std::vector<Tensor> outs;
  std::vector<Tensor> tensor_args;
  try {
    Args args(record, grad_inputs);
    outs = fn->second(args);
    tensor_args = args.all_tensors();
  } catch (const Error& e) {
    if (!record.contains("error")) return std::string("weft raised where torch did not: ") + e.what();
    const std::string name = base_op(op);
    if (lower(e.what()).find(lower(name)) == std::string::npos)
      return "weft's error does not name the op \"" + name + "\": " + e.what();
    return "";
  } catch (const std::exception& e) {
    return std::string("weft threw a non-weft::Error exception: ") + e.what();
  }
  if (record.contains("error"))
    return "torch raises (" + record["error"].get<std::string>() + "), weft returned";
  const json& want = record["out"];
  if (outs.size() != want.size())
    return "weft returned " + std::to_string(outs.size()) + " outputs, torch " + std::to_string(want.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string what = "output " + std::to_string(i);
    if (std::string d = compare(outs[i], want[i], record, what.c_str()); !d.empty()) return d;
  }
  if (record.contains("views")) {
    for (size_t i = 0; i < outs.size(); ++i) {
      const int64_t want_base = record["views"][i].get<int64_t>();
      int64_t got_base = -1;
      for (size_t k = 0; k < tensor_args.size() && got_base < 0; ++k)
        if (outs[i].shares_storage(tensor_args[k]) && outs[i].numel() > 0) got_base = int64_t(k);
      if (got_base != want_base)
        return "output " + std::to_string(i) + " shares the storage of tensor argument " +
               std::to_string(got_base) + ", torch's that of " + std::to_string(want_base) + " (-1: a copy)";
    }
  }
  if (!record.contains("grads")) return "";

  // Gradients of sum(output * weight) over the weighted outputs.
  autograd::variable_list outputs, weights;
  for (size_t i = 0; i < outs.size(); ++i) {
    if (record["weights"][i].is_null()) continue;
    if (!outs[i].requires_grad()) return "output " + std::to_string(i) + " does not require grad; torch's does";
    outputs.push_back(outs[i]);
    weights.push_back(decode_tensor(record["weights"][i]));
  }
  autograd::variable_list grads;
  try {
    grads = autograd::grad(outputs, grad_inputs, weights, false, /*allow_unused=*/true);
  } catch (const Error& e) {
    return std::string("weft's backward raised: ") + e.what();
  }
  const json& want_grads = record["grads"];
  if (grads.size() != want_grads.size()) return "gradient count differs from torch's";
  for (size_t i = 0; i < grads.size(); ++i) {
    const std::string what = "gradient of tensor argument " + std::to_string(i);
    if (want_grads[i].is_null()) {
      if (grads[i].defined() && weft::max(weft::abs(grads[i])).item<double>() != 0.0)
        return what + ": torch has none, weft's is nonzero";
      continue;
    }
    if (!grads[i].defined()) return what + ": weft has none";
    if (std::string d = compare(grads[i], want_grads[i], record, what.c_str()); !d.empty()) return d;
  }
  return "";
}

}  // namespace

Tensor decode_tensor(const json& t, bool requires_grad, Tensor* base) {
  const DType dtype = dtype_named(t["dtype"]);
  Shape shape;
  for (const auto& s : t["shape"]) shape.push_back(s.get<int64_t>());
  const std::string layout = t.value("layout", "contiguous");
  const json& data = t["data"];
  Tensor x;
  if (is_floating(dtype)) {
    std::vector<double> values;
    values.reserve(data.size());
    for (const auto& v : data) values.push_back(number_of(v));
    x = tensor(values, shape, weft::dtype(kFloat64)).to(dtype);
  } else {
    std::vector<int64_t> values;
    values.reserve(data.size());
    for (const auto& v : data) values.push_back(v.is_boolean() ? v.get<bool>() : v.get<int64_t>());
    x = from_vector<int64_t>(values, shape).to(dtype);
  }
  Tensor leaf, view;
  if (layout == "contiguous") {
    leaf = x.contiguous();
    view = leaf;
  } else if (layout == "transposed") {
    leaf = x.transpose(-1, -2).contiguous();
    view = leaf.transpose(-1, -2);
  } else if (layout == "strided") {
    Shape wide = shape;
    wide.push_back(2);
    leaf = zeros(wide, weft::dtype(dtype));
    leaf.select(-1, 0).copy_(x);
    view = leaf.select(-1, 0);
  } else {
    FAIL("unknown layout in the conformance JSON: " << layout);
  }
  if (requires_grad) {
    leaf.requires_grad_();
    view = layout == "contiguous" ? leaf : layout == "transposed" ? leaf.transpose(-1, -2) : leaf.select(-1, 0);
  }
  if (base) *base = leaf;
  return view;
}

Args::Args(const json& record, std::vector<Tensor>& grad_inputs)
    : args_(record["args"]), kwargs_(record["kwargs"]) {
  std::vector<const json*> found;
  collect_tensor_args(args_, found);
  for (const auto& [name, value] : kwargs_.items()) collect_tensor_args(value, found);
  for (const json* a : found) {
    const json& t = (*a)["t"];
    const bool grad = t.value("grad", false);
    Tensor x = decode_tensor(t, grad);
    if (grad) grad_inputs.push_back(x);
    built_[a] = x;
    ordered_.push_back(x);
  }
}

Tensor Args::tensor_of(const json& arg) const {
  const auto it = built_.find(&arg);
  if (it == built_.end()) FAIL("the conformance case has no tensor here: " << arg.dump());
  return it->second;
}

Tensor Args::tensor(size_t i) const { return tensor_of(args_.at(i)); }

std::vector<Tensor> Args::tensors(size_t i) const {
  std::vector<Tensor> out;
  for (const auto& a : args_.at(i)) out.push_back(tensor_of(a));
  return out;
}

double Args::real(size_t i) const { return number_of(args_.at(i)); }
int64_t Args::integer(size_t i) const { return args_.at(i).get<int64_t>(); }
bool Args::boolean(size_t i) const {
  const json& a = args_.at(i);
  return a.is_boolean() ? a.get<bool>() : a.get<int64_t>() != 0;
}

namespace {
Scalar scalar_of(const json& a) {
  if (a.is_boolean()) return Scalar(a.get<bool>());
  if (a.is_number_integer()) return Scalar(a.get<int64_t>());
  return Scalar(number_of(a));
}
Shape ints_of(const json& a) {
  Shape out;
  if (a.is_number_integer()) out.push_back(a.get<int64_t>());
  else
    for (const auto& v : a) out.push_back(v.get<int64_t>());
  return out;
}
}  // namespace

Scalar Args::scalar(size_t i) const { return scalar_of(args_.at(i)); }
std::string Args::string(size_t i) const { return args_.at(i).get<std::string>(); }
Shape Args::ints(size_t i) const { return ints_of(args_.at(i)); }

bool Args::has(const std::string& name) const { return kwargs_.contains(name) && !kwargs_[name].is_null(); }
const json& Args::kw(const std::string& name) const { return kwargs_.at(name); }
Tensor Args::kw_tensor(const std::string& name) const { return has(name) ? tensor_of(kw(name)) : Tensor(); }
double Args::kw_real(const std::string& name, double otherwise) const {
  return has(name) ? number_of(kw(name)) : otherwise;
}
int64_t Args::kw_integer(const std::string& name, int64_t otherwise) const {
  return has(name) ? kw(name).get<int64_t>() : otherwise;
}
bool Args::kw_boolean(const std::string& name, bool otherwise) const {
  if (!has(name)) return otherwise;
  return kw(name).is_boolean() ? kw(name).get<bool>() : kw(name).get<int64_t>() != 0;
}
std::optional<Scalar> Args::kw_scalar(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  return scalar_of(kw(name));
}
std::string Args::kw_string(const std::string& name, const std::string& otherwise) const {
  return has(name) ? kw(name).get<std::string>() : otherwise;
}
Shape Args::kw_ints(const std::string& name) const { return has(name) ? ints_of(kw(name)) : Shape{}; }

void run_conformance(const std::string& script, const OpTable& table) {
  const json cases = run_python_oracle(script)["cases"];
  REQUIRE(!cases.empty());
  size_t failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string problem = run_case(cases[i], table);
    if (problem.empty()) continue;
    ++failures;
    std::string why = cases[i].value("why", "");
    FAIL_CHECK("case " << i << ": " << describe(cases[i]) << (why.empty() ? "" : " (" + why + ")") << "\n  "
                       << problem);
  }
  INFO(cases.size() << " cases");
  CHECK(failures == 0);
}

}  // namespace weft::test::conformance
