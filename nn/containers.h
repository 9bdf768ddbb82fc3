// nn containers: ModuleList and ModuleDict hold submodules (registered, so their parameters,
// buffers, state dict entries and train/eval follow) without a forward of their own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace weft::nn {

// Modules registered as "0", "1", ...
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;
  // The i-th module as an M; an error names the index when it is another type.
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    WEFT_CHECK(m != nullptr, "ModuleList: module ", i, " is a ", (*this)[i]->type_name(), ", not the type asked for");
    return m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Modules registered under their names, in insertion order.
class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}
  void insert(const std::string& name, std::shared_ptr<Module> module) { register_module(name, std::move(module)); }
  bool contains(const std::string& name) const { return named_children().contains(name); }
  size_t size() const { return named_children().size(); }
  const std::shared_ptr<Module>& operator[](const std::string& name) const;
  std::vector<std::string> keys() const { return named_children().keys(); }
};

}  // namespace weft::nn
