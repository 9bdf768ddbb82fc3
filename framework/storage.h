// Storage: one block of memory from the caching allocator, shared by a tensor and its views.
#pragma once

#include <cstddef>
#include <cstdint>

#include "framework/allocator.h"

namespace weft {

namespace detail {
// Note [Inference tensors]
// Storage made while inference mode is on (InferenceMode, autograd/grad_mode.h) belongs to inference
// tensors, as PyTorch calls them: it counts no versions, since nothing recorded can have saved it.
// For the same reason it must stay out of recorded graphs: outside inference mode an in-place write
// into it is refused (ops/inplace.cpp, even under no-grad, as PyTorch does) and so is saving it for
// backward (autograd/node.cpp). Make a clone to get a normal tensor.
struct InferenceFlag {
  // initial-exec as GradMode's flag: read on every allocation of a tensor.
  [[gnu::tls_model("initial-exec")]] static constinit thread_local bool enabled;
};
}  // namespace detail

// Owns its bytes. The version counter lives here so that a tensor, its views and its detached
// aliases see one count: an in-place write through any of them is seen by saved tensors.
class Storage {
 public:
  // `op` names the caller if the allocation fails.
  explicit Storage(size_t nbytes, const char* op = "allocator")
      : data_(allocator::allocate(nbytes, op)), nbytes_(nbytes) {}
  ~Storage() { allocator::deallocate(data_, nbytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint64_t version() const { return version_; }
  void bump_version() { version_ += !inference_; }
  bool is_inference() const { return inference_; }

 private:
  void* data_;
  size_t nbytes_;
  uint64_t version_ = 0;
  const bool inference_ = detail::InferenceFlag::enabled;  // see Note [Inference tensors]
};

}  // namespace weft
