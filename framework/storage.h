// Storage: one block of memory from the caching allocator, shared by a tensor and its views.
#pragma once

#include <cstddef>
#include <cstdint>

#include "framework/allocator.h"

namespace weft {

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
  void bump_version() { ++version_; }

 private:
  void* data_;
  size_t nbytes_;
  uint64_t version_ = 0;
};

}  // namespace weft
