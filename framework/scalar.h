// Scalar: a number given where a tensor could stand (add(x, 2.0)), remembering if it was floating.
#pragma once

#include <cstdint>
#include <type_traits>

#include "framework/float16.h"

namespace weft {

class Scalar {
 public:
  Scalar(double v) : value_(v), floating_(true) {}
  Scalar(float v) : value_(v), floating_(true) {}
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Scalar(I v) : value_(static_cast<double>(v)), int_(static_cast<int64_t>(v)), floating_(false) {}
  Scalar(bool v) : value_(v ? 1.0 : 0.0), int_(v), floating_(false), boolean_(true) {}

  bool is_floating() const { return floating_; }
  bool is_bool() const { return boolean_; }
  double to_double() const { return value_; }
  int64_t to_int() const { return floating_ ? static_cast<int64_t>(value_) : int_; }
  template <class T>
  T to() const {
    if constexpr (std::is_floating_point_v<T>) return static_cast<T>(value_);
    else if constexpr (is_reduced_float_v<T>) return T(static_cast<float>(value_));  // as PyTorch: via float
    else if constexpr (std::is_same_v<T, bool>) return value_ != 0.0;
    else return static_cast<T>(to_int());
  }

 private:
  double value_;
  int64_t int_ = 0;
  bool floating_;
  bool boolean_ = false;
};

}  // namespace weft
