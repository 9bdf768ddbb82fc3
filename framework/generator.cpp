// The seeded generator's transforms.
#include "framework/generator.h"

#include <cmath>

#include "framework/error.h"

namespace weft {

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform(), u2 = uniform();
  double radius = std::sqrt(-2.0 * std::log1p(-u1));  // 1 - u1 is in (0, 1]: log is finite
  double angle = 2.0 * M_PI * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  WEFT_CHECK(low < high, "randint: expected low < high but got low=", low, ", high=", high);
  // Unsigned: high - low may exceed INT64_MAX (randint(INT64_MIN, INT64_MAX)).
  uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  uint64_t limit = UINT64_MAX - UINT64_MAX % range;  // reject to stay unbiased
  uint64_t x;
  do x = engine_();
  while (x >= limit);
  return static_cast<int64_t>(static_cast<uint64_t>(low) + x % range);
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(uint64_t seed) {
  Generator& g = default_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.manual_seed(seed);
}

}  // namespace weft
