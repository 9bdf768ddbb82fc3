// nn containers: ModuleList and ModuleDict.
#include "nn/containers.h"

namespace weft::nn {

void ModuleList::push_back(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  WEFT_CHECK(i < modules_.size(), "ModuleList: index ", i, " is out of range for a list of ", modules_.size(),
             " modules");
  return modules_[i];
}

const std::shared_ptr<Module>& ModuleDict::operator[](const std::string& name) const {
  const auto* m = named_children().find(name);
  if (m == nullptr) {
    std::string names;
    for (const auto& key : keys()) names += (names.empty() ? "" : ", ") + key;
    WEFT_ERROR("ModuleDict: no module named '", name, "'; it holds (", names, ")");
  }
  return *m;
}

}  // namespace weft::nn
