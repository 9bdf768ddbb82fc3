// nn::Module: registration, traversal, train/eval, state dicts, dtype conversion and printing.
#include "nn/module.h"

#include <algorithm>
#include <sstream>

#include "autograd/grad_mode.h"
#include "kernels/toolkit.h"

namespace weft::nn {

void Module::check_new_name(const std::string& name, const char* what) const {
  WEFT_CHECK(!name.empty(), type_name_, ".", what, ": the name must not be empty");
  WEFT_CHECK(name.find('.') == std::string::npos, type_name_, ".", what, ": name '", name,
             "' must not contain '.' (dots separate the levels of the module tree)");
  WEFT_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
             type_name_, ".", what, ": '", name, "' is already registered in this module");
}

Tensor& Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "register_parameter");
  if (tensor.defined()) {
    // A parameter is a leaf: whatever computed its initial value is not part of any model graph.
    if (!tensor.is_leaf()) tensor = tensor.detach();
    tensor.requires_grad_(requires_grad);
  }
  return parameters_.insert(name, std::move(tensor));
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name, "register_buffer");
  return buffers_.insert(name, std::move(tensor));
}

Tensor& Module::parameter_slot(const std::string& name) {
  Tensor* slot = parameters_.find(name);
  WEFT_CHECK(slot != nullptr, type_name_, ".parameter_slot: no parameter named '", name, "'");
  return *slot;
}

void Module::collect(const std::string& prefix, bool recurse, bool params, bool bufs,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  if (params)
    for (const auto& [name, t] : parameters_)
      if (t.defined()) out.emplace_back(prefix + name, t);
  if (bufs)
    for (const auto& [name, t] : buffers_)
      if (t.defined()) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", true, params, bufs, out);
}

namespace {
// A tensor reachable under two names (a submodule registered twice) is listed once, under its first
// name, as PyTorch's remove_duplicate=True: an optimizer must not update it twice.
std::vector<std::pair<std::string, Tensor>> without_duplicates(std::vector<std::pair<std::string, Tensor>> in) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& entry : in) {
    bool seen = false;
    for (const auto& kept : out) seen = seen || kept.second.is_same(entry.second);
    if (!seen) out.push_back(std::move(entry));
  }
  return out;
}
}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", recurse, true, false, out);
  return without_duplicates(std::move(out));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", recurse, false, true, out);
  return without_duplicates(std::move(out));
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [name, child] : children_) out.push_back(child);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters())
    if (p.grad().defined()) p.set_grad(Tensor());
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

StateDict Module::state_dict() const {
  StateDict out;
  std::vector<std::pair<std::string, Tensor>> entries;
  collect("", true, true, true, entries);
  for (auto& [name, t] : entries) out.insert(name, t.detach());
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::vector<std::pair<std::string, Tensor>> entries;
  collect("", true, true, true, entries);
  // Check everything before copying anything, so that a failed load leaves the module unchanged.
  for (const auto& [name, t] : entries) {
    const Tensor* src = state.find(name);
    WEFT_CHECK(src != nullptr && src->defined(), "load_state_dict: missing key '", name, "' (expected shape ",
               t.shape(), ") in the given state dict of ", type_name_);
    WEFT_CHECK(src->shape() == t.shape(), "load_state_dict: size mismatch for '", name,
               "': the state dict has shape ", src->shape(), " but the module's tensor has shape ", t.shape());
  }
  if (strict) {
    for (const auto& [name, t] : state) {
      bool known = false;
      for (const auto& entry : entries) known = known || entry.first == name;
      WEFT_CHECK(known, "load_state_dict: unexpected key '", name, "' in the given state dict; ", type_name_,
                 " has no such parameter or buffer (pass strict=false to ignore it)");
    }
  }
  NoGradGuard no_grad;
  for (const auto& [name, t] : entries) {
    kernels::copy_into(t, *state.find(name));
    t.bump_version();
  }
}

namespace {
Tensor converted(const Tensor& t, DType dtype) {
  if (!t.defined() || !t.is_floating_point() || t.dtype() == dtype) return t;
  return kernels::contiguous_copy(t, dtype);
}
}  // namespace

void Module::to(DType dtype) {
  WEFT_CHECK(is_floating(dtype), type_name_, ".to: expected a floating dtype but got ", dtype);
  for (auto& [name, t] : parameters_) {
    if (!t.defined() || t.dtype() == dtype) continue;
    bool grad = t.requires_grad();
    t = converted(t, dtype);
    t.requires_grad_(grad);
  }
  for (auto& [name, t] : buffers_) t = converted(t, dtype);
  for (auto& [name, child] : children_) child->to(dtype);
}

namespace {
std::string count_str(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
}  // namespace

void Module::pretty_print(std::ostream& out, int indent) const {
  std::string pad(static_cast<size_t>(indent), ' ');
  int64_t n = num_parameters();
  std::string count = n > 0 ? "  # " + count_str(n) + (n == 1 ? " parameter" : " parameters") : "";
  out << type_name_ << "(" << extra_repr();
  if (children_.empty()) {
    out << ")" << count;
    return;
  }
  out << count << "\n";
  for (const auto& [name, child] : children_) {
    out << pad << "  (" << name << "): ";
    child->pretty_print(out, indent + 2);
    out << "\n";
  }
  out << pad << ")";
}

Tensor UnaryModule::operator()(const Tensor& x) { return wrappers_.empty() ? forward(x) : call_from(0, x); }

Tensor UnaryModule::call_from(size_t wrapper, const Tensor& x) {
  if (wrapper == wrappers_.size()) return forward(x);
  return wrappers_[wrapper].second(x, [this, wrapper](const Tensor& y) { return call_from(wrapper + 1, y); });
}

void UnaryModule::add_forward_wrapper(std::string tag, ForwardWrapper wrapper) {
  WEFT_CHECK(wrapper != nullptr, type_name(), ".add_forward_wrapper: the wrapper '", tag, "' is empty");
  wrappers_.emplace_back(std::move(tag), std::move(wrapper));
}

bool UnaryModule::has_forward_wrapper(const std::string& tag) const {
  return std::any_of(wrappers_.begin(), wrappers_.end(), [&](const auto& w) { return w.first == tag; });
}

std::ostream& operator<<(std::ostream& out, const Module& module) {
  module.pretty_print(out);
  return out;
}

}  // namespace weft::nn
