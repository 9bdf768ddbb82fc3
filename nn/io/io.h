// NumPy (.npy, .npz) and safetensors files: weights and data to and from Python.
#pragma once

#include <string>

#include "framework/tensor.h"
#include "nn/module.h"

namespace weft::io {

// Files hold float32, float64, int64, int32, uint8 and bool elements; int32 and uint8 load as
// int64 (values exact: weft has no narrower integer dtype), everything is written in the tensor's
// own dtype. Anything else, and any file whose sizes do not add up, is a weft::Error.
//
// Maps are nn::StateDict (ordered by name insertion), so that
//   model.load_state_dict(io::load_safetensors("model.safetensors"));
//   io::save_npz("model.npz", model.state_dict());
// move PyTorch-named weights between weft and Python.

// One array, .npy format versions 1-3, C or Fortran order. Writes version 1.0 (2.0 for huge
// headers), C order.
Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& tensor);

// np.savez / np.savez_compressed archives: each member "name.npy" becomes the entry "name", in
// archive order. Writes uncompressed members, as np.savez does.
nn::StateDict load_npz(const std::string& path);
void save_npz(const std::string& path, const nn::StateDict& tensors);

// safetensors: entries in the order of their data in the file; writes in the map's order.
nn::StateDict load_safetensors(const std::string& path);
void save_safetensors(const std::string& path, const nn::StateDict& tensors);

}  // namespace weft::io
