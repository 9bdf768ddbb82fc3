// nn/slot_swap.h (internal): points a module's parameter slots at other tensors for one call (the
// local or gathered tensors a parallel forward computes with), and back on exit.
#pragma once

#include <vector>

#include "framework/tensor.h"

namespace weft::nn::detail {

// slots[i] lists the slots (several when weights are tied) that take values[i] for the scope.
class SlotSwap {
 public:
  SlotSwap(const std::vector<std::vector<Tensor*>>& slots, const std::vector<Tensor>& values) : slots_(slots) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      saved_.push_back(*slots_[i][0]);
      for (Tensor* s : slots_[i]) *s = values[i];
    }
  }
  ~SlotSwap() {
    for (size_t i = 0; i < slots_.size(); ++i)
      for (Tensor* s : slots_[i]) *s = saved_[i];
  }
  SlotSwap(const SlotSwap&) = delete;
  SlotSwap& operator=(const SlotSwap&) = delete;

 private:
  const std::vector<std::vector<Tensor*>>& slots_;
  std::vector<Tensor> saved_;
};

}  // namespace weft::nn::detail
