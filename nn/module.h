// nn::Module: the parameter/buffer/submodule registry every layer derives from, state dicts, printing.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "framework/error.h"
#include "framework/tensor.h"

namespace weft::nn {

// An insertion-ordered map from names to values. Entries live in a deque so that a reference
// to a value stays valid while more entries are added: layers keep `Tensor& weight` bound to
// their registry slot, so replacing a parameter (to(dtype), a distributed rewrite, or a user's
// `lin->weight = t`) is seen by the registry and by forward alike.
template <class V>
class OrderedDict {
 public:
  using Item = std::pair<std::string, V>;

  V& insert(const std::string& key, V value) {
    WEFT_CHECK(!contains(key), "OrderedDict: key '", key, "' is already present");
    items_.emplace_back(key, std::move(value));
    return items_.back().second;
  }
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  const V* find(const std::string& key) const {
    for (const auto& item : items_)
      if (item.first == key) return &item.second;
    return nullptr;
  }
  V* find(const std::string& key) {
    return const_cast<V*>(static_cast<const OrderedDict&>(*this).find(key));
  }
  V& at(const std::string& key) {
    V* v = find(key);
    WEFT_CHECK(v != nullptr, "OrderedDict: no key '", key, "'");
    return *v;
  }
  const V& at(const std::string& key) const { return const_cast<OrderedDict&>(*this).at(key); }
  V& operator[](const std::string& key) { return at(key); }
  const V& operator[](const std::string& key) const { return at(key); }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& item : items_) k.push_back(item.first);
    return k;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::deque<Item> items_;
};

// Name -> tensor, in the module tree's registration order: parameters and buffers of a module,
// then its children's, with dotted names ("blocks.0.attn.qkv.weight").
using StateDict = OrderedDict<Tensor>;

// The base of every layer. Modules are held by std::shared_ptr and registered once.
class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // "Linear", "GPT", ...: the name printed in the module tree.
  const std::string& type_name() const { return type_name_; }

  // Registers `tensor` as a leaf parameter that requires grad (an undefined tensor marks an
  // optional parameter that is absent, like a Linear without bias; it is skipped everywhere).
  // Returns a reference to the registry slot, stable for the module's lifetime.
  Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  // Registers state that is saved and loaded but not trained (running statistics, masks).
  Tensor& register_buffer(const std::string& name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    WEFT_CHECK(module != nullptr, type_name_, ".register_module: submodule '", name, "' is null");
    check_new_name(name, "register_module");
    children_.insert(name, module);
    return module;
  }

  // Parameters (defined ones, each once even if shared), depth first in registration order.
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const OrderedDict<std::shared_ptr<Module>>& named_children() const { return children_; }
  // The registry slot of a direct parameter; replacing it replaces the parameter.
  Tensor& parameter_slot(const std::string& name);

  // Switches this module and every descendant between training and evaluation behaviour.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Sets every parameter's gradient to undefined (PyTorch's set_to_none=True).
  void zero_grad();
  int64_t num_parameters() const;

  // Detached handles sharing the parameters' and buffers' storage, in registration order.
  StateDict state_dict() const;
  // Copies values in place under NoGradGuard. Every key the module has must be present with the
  // same shape; with `strict`, keys the module does not have are errors too.
  void load_state_dict(const StateDict& state, bool strict = true);

  // Converts every floating parameter and buffer to `dtype` (new leaves, same requires_grad).
  void to(DType dtype);

  // The text inside the parentheses of this module's line, as PyTorch's extra_repr.
  virtual std::string extra_repr() const { return ""; }
  // The module tree with parameter counts.
  void pretty_print(std::ostream& out, int indent = 0) const;

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool recurse, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor>>& out) const;

  std::string type_name_;
  bool training_ = true;
  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  OrderedDict<std::shared_ptr<Module>> children_;
};

std::ostream& operator<<(std::ostream& out, const Module& module);

// A module computing one tensor from one tensor: what Sequential can chain.
class UnaryModule : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& x) = 0;
  // forward through the forward wrappers, outermost (first added) first. As PyTorch's module hooks,
  // they run when the module is called as module(x), which Sequential does, not by forward(x).
  Tensor operator()(const Tensor& x);

  // A wrapper receives the input and `next`, which runs the inner wrappers and then forward; it
  // may act before and after (fully_shard gathers the parameters around the call). `tag` names it.
  using ForwardWrapper =
      std::function<Tensor(const Tensor& x, const std::function<Tensor(const Tensor&)>& next)>;
  void add_forward_wrapper(std::string tag, ForwardWrapper wrapper);
  bool has_forward_wrapper(const std::string& tag) const;

 private:
  Tensor call_from(size_t wrapper, const Tensor& x);
  std::vector<std::pair<std::string, ForwardWrapper>> wrappers_;
};

}  // namespace weft::nn
