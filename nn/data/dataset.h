// Datasets: indexable collections of examples, each a list of tensors (input, target, ...).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace weft::data {

// One example's fields, e.g. {input, target}.
using Sample = std::vector<Tensor>;

// PyTorch's map-style Dataset. get() may be called from the DataLoader's background thread, so
// it must not change shared state without its own locking.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
};

// Example i is row i of every tensor (all have the same first dimension), as PyTorch's
// TensorDataset. The tensors are copied once into contiguous storage without autograd history.
class TensorDataset : public Dataset {
 public:
  explicit TensorDataset(std::vector<Tensor> tensors);
  int64_t size() const override { return size_; }
  Sample get(int64_t index) const override;

 private:
  std::vector<Tensor> tensors_;
  int64_t size_;
};

// Example i is row i of each .npy file (C order, any dtype load_npy reads; all files have the
// same first dimension). Rows are read from the files when asked for, so a dataset larger than
// memory streams from disk.
class NpyDataset : public Dataset {
 public:
  explicit NpyDataset(std::vector<std::string> paths);
  ~NpyDataset() override;
  int64_t size() const override { return size_; }
  Sample get(int64_t index) const override;

  struct Field;

 private:
  std::vector<std::unique_ptr<Field>> fields_;
  int64_t size_ = 0;
};

}  // namespace weft::data
