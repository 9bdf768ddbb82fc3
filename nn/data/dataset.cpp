// TensorDataset and NpyDataset.
#include "nn/data/dataset.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "autograd/grad_mode.h"
#include "framework/factories.h"
#include "nn/io/elements.h"
#include "nn/io/npy_format.h"

namespace weft::data {
namespace {

void check_index(int64_t index, int64_t size, const char* dataset) {
  WEFT_CHECK(index >= 0 && index < size, dataset, ".get: index ", index, " is out of range for a dataset of ",
             size, " examples");
}

Shape row_shape(const Shape& shape) {
  Shape row;
  for (size_t d = 1; d < shape.size(); ++d) row.push_back(shape[d]);
  return row;
}

}  // namespace

TensorDataset::TensorDataset(std::vector<Tensor> tensors) : size_(0) {
  WEFT_CHECK(!tensors.empty(), "TensorDataset: expected at least one tensor");
  NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    WEFT_CHECK(t.defined() && !t.is_dtensor() && t.dim() >= 1, "TensorDataset: tensor ", i,
               " must be a plain tensor with at least one dimension");
    WEFT_CHECK(t.shape()[0] == tensors[0].shape()[0], "TensorDataset: size mismatch between tensors: tensor ", i,
               " has shape ", t.shape(), " but tensor 0 has shape ", tensors[0].shape());
    tensors_.push_back(t.detach().contiguous());
  }
  size_ = tensors[0].shape()[0];
}

Sample TensorDataset::get(int64_t index) const {
  check_index(index, size_, "TensorDataset");
  Sample sample;
  for (const Tensor& t : tensors_) {
    // A copy of the row, not a view: batches never alias the dataset, whichever thread makes them.
    Tensor row = empty(row_shape(t.shape()), dtype(t.dtype()));
    const size_t bytes = static_cast<size_t>(row.numel()) * t.element_size();
    std::memcpy(row.raw_data(), static_cast<const char*>(t.raw_data()) + index * bytes, bytes);
    sample.push_back(row);
  }
  return sample;
}

struct NpyDataset::Field {
  std::string path;
  int fd = -1;
  io::detail::NpyLayout layout;
  ~Field() {
    if (fd >= 0) close(fd);
  }
};

NpyDataset::NpyDataset(std::vector<std::string> paths) {
  WEFT_CHECK(!paths.empty(), "NpyDataset: expected at least one .npy file");
  for (const std::string& path : paths) {
    auto field = std::make_unique<Field>();
    field->path = path;
    field->layout = io::detail::read_npy_layout(path, "NpyDataset");
    const Shape& shape = field->layout.shape;
    WEFT_CHECK(!field->layout.fortran_order, "NpyDataset: '", path,
               "' is in Fortran order, whose rows are not contiguous; save it in C order (np.ascontiguousarray)");
    WEFT_CHECK(!shape.empty(), "NpyDataset: '", path, "' holds a 0-d array; expected one row per example");
    WEFT_CHECK(fields_.empty() || shape[0] == size_, "NpyDataset: '", path, "' has ", shape[0],
               " rows but '", paths[0], "' has ", size_);
    size_ = shape[0];
    field->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    WEFT_CHECK(field->fd >= 0, "NpyDataset: cannot open '", path, "': ", std::strerror(errno));
    fields_.push_back(std::move(field));
  }
}

NpyDataset::~NpyDataset() = default;

Sample NpyDataset::get(int64_t index) const {
  check_index(index, size_, "NpyDataset");
  Sample sample;
  for (const auto& field : fields_) {
    const Shape row = row_shape(field->layout.shape);
    const size_t bytes = static_cast<size_t>(numel_of(row)) * field->layout.type.size;
    std::string buffer(bytes, '\0');
    // pread: no shared file position, so the background thread and the caller may both read.
    const off_t offset = static_cast<off_t>(field->layout.data_offset + index * bytes);
    const ssize_t got = bytes ? pread(field->fd, buffer.data(), bytes, offset) : 0;
    WEFT_CHECK(got == static_cast<ssize_t>(bytes), "NpyDataset: reading row ", index, " of '", field->path,
               "' failed (the file changed since it was opened?)");
    sample.push_back(io::detail::decode_elements(buffer, field->layout.type, row));
  }
  return sample;
}

}  // namespace weft::data
