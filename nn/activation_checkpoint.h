// nn/activation_checkpoint.h: activation checkpointing: run a piece of a model without keeping its
// intermediate tensors, and recompute them in backward (torch.utils.checkpoint). Trades one more
// forward of that piece for its activations' memory. (nn/checkpoint.h is state-dict saving.)
#pragma once

#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace weft::nn {

using CheckpointFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns fn(inputs), keeping only the inputs and the default generator's state: backward runs fn
// again with the generator as it was (a dropout inside draws the same mask) and backpropagates
// through that recomputation, so gradients reach the inputs and every parameter fn uses. With grad
// mode off, or no input requiring grad, it is fn(inputs) recorded as usual (parameters inside fn
// still get gradients; torch's reentrant checkpoint would drop them). Inputs must not be modified
// in place before backward (the saved-tensor version check says so). As torch's reentrant
// checkpoint, a tensor fn captures (a parameter) gets its gradient accumulated into .grad by
// backward(), but autograd::grad() sees only gradients through the inputs: pass such tensors as inputs.
Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs);

// checkpoint(fn, a, b, ...): fn takes the tensors as separate arguments, as torch.utils.checkpoint.
template <class F, class... Ts>
  requires(sizeof...(Ts) > 0 && (std::is_convertible_v<const Ts&, const Tensor&> && ...))
Tensor checkpoint(F&& fn, const Ts&... inputs) {
  CheckpointFn unpacked = [f = std::forward<F>(fn)](const std::vector<Tensor>& in) {
    return [&]<size_t... I>(std::index_sequence<I...>) { return Tensor(f(in[I]...)); }(std::index_sequence_for<Ts...>{});
  };
  return checkpoint(unpacked, std::vector<Tensor>{inputs...});
}

}  // namespace weft::nn
