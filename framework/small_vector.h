// SmallVector: a vector with inline storage, so that shapes and strides do not allocate.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <type_traits>

namespace weft {

// Holds up to N trivially copyable elements inline and moves to the heap past that.
template <class T, size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>, "SmallVector holds trivially copyable values");

 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  SmallVector() = default;
  SmallVector(std::initializer_list<T> values) { assign(values.begin(), values.end()); }
  explicit SmallVector(size_t count, T value = T()) { resize(count, value); }
  template <class It, class = decltype(*std::declval<It>())>
  SmallVector(It first, It last) { assign(first, last); }
  SmallVector(const SmallVector& other) {
    if (other.size_ <= N) {
      // A fixed-size copy of the whole inline buffer compiles to a few vector moves; a copy of
      // `size_` elements was a memmove call, on every tensor's shape and strides. (`other` has at
      // least N readable elements: inline, or a heap block that outgrew N.)
      std::memcpy(inline_, other.data_, N * sizeof(T));
      size_ = other.size_;
    } else {
      assign(other.begin(), other.end());
    }
  }
  SmallVector(SmallVector&& other) noexcept { steal(other); }
  SmallVector& operator=(const SmallVector& other) {
    if (this == &other) return *this;
    if (other.size_ <= N) {
      release();  // the fixed-size copy of the copy constructor, for the same reason
      std::memcpy(inline_, other.data_, N * sizeof(T));
      size_ = other.size_;
    } else {
      assign(other.begin(), other.end());
    }
    return *this;
  }
  SmallVector& operator=(SmallVector&& other) noexcept {
    if (this != &other) {
      release();
      steal(other);
    }
    return *this;
  }
  ~SmallVector() { release(); }

  template <class It>
  void assign(It first, It last) {
    size_t count = static_cast<size_t>(std::distance(first, last));
    size_ = 0;
    reserve(count);
    std::copy(first, last, data_);
    size_ = count;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& back() { return data_[size_ - 1]; }
  const T& back() const { return data_[size_ - 1]; }
  T& front() { return data_[0]; }
  const T& front() const { return data_[0]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  void reserve(size_t count) {
    if (count <= capacity_) return;
    size_t new_capacity = std::max(count, capacity_ * 2);
    T* heap = static_cast<T*>(::operator new(new_capacity * sizeof(T)));
    const size_t size = size_;  // release() forgets the elements; they now live in `heap`
    if (size != 0) std::memcpy(heap, data_, size * sizeof(T));
    release();
    size_ = size;
    data_ = heap;
    capacity_ = new_capacity;
  }
  void resize(size_t count, T value = T()) {
    reserve(count);
    for (size_t i = size_; i < count; ++i) data_[i] = value;
    size_ = count;
  }
  void push_back(T value) {
    if (size_ == capacity_) reserve(size_ + 1);
    data_[size_++] = value;
  }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }
  iterator insert(const_iterator pos, T value) {
    size_t index = static_cast<size_t>(pos - data_);
    push_back(value);
    std::rotate(data_ + index, data_ + size_ - 1, data_ + size_);
    return data_ + index;
  }
  iterator erase(const_iterator pos) {
    size_t index = static_cast<size_t>(pos - data_);
    std::copy(data_ + index + 1, data_ + size_, data_ + index);
    --size_;
    return data_ + index;
  }

  friend bool operator==(const SmallVector& a, const SmallVector& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  bool is_inline() const { return data_ == reinterpret_cast<const T*>(inline_); }
  void release() {
    if (!is_inline()) ::operator delete(data_);
    data_ = reinterpret_cast<T*>(inline_);
    capacity_ = N;
    size_ = 0;
  }
  void steal(SmallVector& other) {
    if (other.is_inline()) {
      data_ = reinterpret_cast<T*>(inline_);
      capacity_ = N;
      std::memcpy(data_, other.data_, N * sizeof(T));  // fixed size: no memmove call
      size_ = other.size_;
    } else {
      data_ = other.data_;
      capacity_ = other.capacity_;
      size_ = other.size_;
      other.data_ = reinterpret_cast<T*>(other.inline_);
      other.capacity_ = N;
    }
    other.size_ = 0;
  }

  T* data_ = reinterpret_cast<T*>(inline_);
  size_t size_ = 0;
  size_t capacity_ = N;
  alignas(T) unsigned char inline_[N * sizeof(T)];
};

}  // namespace weft
