// Generator: the seeded random source. The same seed gives the same numbers on every run and on
// every MPI rank, because the engine (mt19937_64) and the transforms are fully specified here.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace weft {

// Note [Generator threads]
// As in PyTorch, a generator's draws are not synchronised themselves; whoever draws a batch holds
// mutex() for it. weft's own draws (rand, randn, randint, dropout, nn::init, manual_seed) do, so
// several threads may use default_generator() at once: each batch is drawn whole, in some order,
// and one thread's draws after manual_seed are reproducible while it is the only one drawing.
// A caller of uniform(), normal() or randint() directly on a shared generator locks mutex() itself.
class Generator {
 public:
  explicit Generator(uint64_t seed = 5489u) { manual_seed(seed); }
  void manual_seed(uint64_t seed) {
    engine_.seed(seed);
    has_spare_ = false;
  }
  uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller, keeping the second value for the next call.
  double normal();
  // Uniform integer in [low, high).
  int64_t randint(int64_t low, int64_t high);
  std::mutex& mutex() { return mutex_; }

  // The whole state (the engine and the kept normal), to replay draws: activation checkpointing
  // (nn/activation_checkpoint.h) restores it so that a recomputed dropout draws the same mask.
  struct State {
    std::mt19937_64 engine;
    bool has_spare = false;
    double spare = 0.0;
  };
  State state() const { return {engine_, has_spare_, spare_}; }
  void set_state(const State& s) {
    engine_ = s.engine;
    has_spare_ = s.has_spare;
    spare_ = s.spare;
  }

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The process-wide generator that rand, randn, randint and dropout draw from.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace weft
