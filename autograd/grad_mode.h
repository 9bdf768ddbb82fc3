// Grad mode: a thread-local switch; ops under no-grad record nothing.
#pragma once

#include "framework/storage.h"

namespace weft {

class GradMode {
 public:
  static bool is_enabled() { return enabled_; }
  static void set_enabled(bool enabled) { enabled_ = enabled; }

 private:
  // initial-exec: read on every op, so a %fs-relative load rather than a __tls_get_addr call (the
  // library is linked at startup, never dlopen'ed late). constinit tells every includer that the
  // definition needs no dynamic initialization: without it each read first called (through the PLT)
  // or tested a TLS wrapper, a GOT load that missed after a large kernel.
  [[gnu::tls_model("initial-exec")]] static constinit thread_local bool enabled_;
};

// Disables recording for its scope (inference, optimizer steps, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Enables recording for its scope, e.g. a local_map body run inside a custom Function's forward.
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// Inference mode (torch.inference_mode): no recording, as NoGradGuard, and every tensor made in its
// scope is an inference tensor that counts no versions and cannot later enter a recorded graph (in
// place or saved for backward): see Note [Inference tensors] (framework/storage.h).
class InferenceMode {
 public:
  static bool is_enabled() { return detail::InferenceFlag::enabled; }
};

class InferenceModeGuard {
 public:
  InferenceModeGuard() : previous_grad_(GradMode::is_enabled()), previous_(InferenceMode::is_enabled()) {
    GradMode::set_enabled(false);
    detail::InferenceFlag::enabled = true;
  }
  ~InferenceModeGuard() {
    detail::InferenceFlag::enabled = previous_;
    GradMode::set_enabled(previous_grad_);
  }
  InferenceModeGuard(const InferenceModeGuard&) = delete;
  InferenceModeGuard& operator=(const InferenceModeGuard&) = delete;

 private:
  bool previous_grad_, previous_;
};

// Anomaly mode: names the forward op of a backward node that produced NaN. Off by default.
class AnomalyMode {
 public:
  static bool is_enabled() { return enabled_; }
  static void set_enabled(bool enabled) { enabled_ = enabled; }

 private:
  static bool enabled_;
};

class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : previous_(AnomalyMode::is_enabled()) { AnomalyMode::set_enabled(true); }
  ~DetectAnomalyGuard() { AnomalyMode::set_enabled(previous_); }

 private:
  bool previous_;
};

}  // namespace weft
