// dtensor.h: DTensor, a Tensor whose impl carries a DTensorSpec (mesh, placements, global shape,
// local shard), and the differentiable entry points distribute_tensor / from_local / to_local /
// full_tensor / redistribute.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "distributed/device_mesh.h"
#include "distributed/placement.h"
#include "framework/tensor.h"

namespace weft::dist {

// Note [DTensor layout]
// A DTensor's TensorImpl has no storage; its shape is the global shape, its strides the global
// contiguous strides, and impl->dist is a DTensorSpec holding the local tensor. The local tensor is
// kept WITHOUT autograd history: autograd lives on the DTensor's own impl, and the differentiable
// functions below move gradients between the two (see dtensor_autograd.cpp).
struct DTensorSpec : DistSpec {
  DeviceMesh mesh;
  Placements placements;  // one per mesh dim, shard dims normalised
  Shape global_shape;
  Shape global_strides;
  Tensor local;

  // Note [DTensor gradient arithmetic] (dtensor_autograd.cpp).
  Tensor add_gradients(const Tensor& a, const Tensor& b) const override;
  bool add_gradient_in_place(const Tensor& sum, const Tensor& grad) const override;
};

// DTensor::FromLocalOptions (declared outside the class so that it can be a default argument).
struct FromLocalOptions {
  bool run_check = false;
  std::optional<Shape> shape = std::nullopt;
  std::optional<Shape> stride = std::nullopt;
  std::optional<Placements> grad_placements = std::nullopt;
};

class DTensor : public Tensor {
 public:
  DTensor() = default;
  // Both check t.is_dtensor(); inline, since local_map and every DTensor gradient convert on each
  // call, and the check is one load.
  explicit DTensor(const Tensor& t) : Tensor(t) {
    if (!is_dtensor()) [[unlikely]] not_a_dtensor(*this);
  }
  explicit DTensor(Tensor&& t) : Tensor(std::move(t)) {  // without a reference count round trip
    if (!is_dtensor()) [[unlikely]] not_a_dtensor(*this);
  }

  using FromLocalOptions = dist::FromLocalOptions;
  // Wraps this rank's `local` shard (differentiable). Placements default to all Replicate; the
  // global shape is `shape` when given (with `stride`), else the even sharding of local's shape.
  static DTensor from_local(const Tensor& local, const DeviceMesh& mesh, Placements placements = {},
                            FromLocalOptions options = {});
  // The local shard (an alias). Backward wraps the local gradient with grad_placements, by
  // default the placements with Partial -> Replicate. No communication.
  Tensor to_local(std::optional<Placements> grad_placements = std::nullopt) const;
  // redistribute to all Replicate, then to_local(grad_placements).
  Tensor full_tensor(std::optional<Placements> grad_placements = std::nullopt) const;
  // Differentiable; refuses Partial targets that differ from the current placement.
  DTensor redistribute(const Placements& placements) const;

  // A DTensor is never undefined once constructed from a tensor; a default-constructed one raises.
  const DTensorSpec& spec() const {
    if (!defined()) [[unlikely]] not_a_dtensor(*this);
    return static_cast<const DTensorSpec&>(*impl()->dist);
  }
  const Placements& placements() const { return spec().placements; }
  const DeviceMesh& device_mesh() const { return spec().mesh; }
  std::string to_string() const;  // mesh, placements, global shape and the local tensor

 private:
  [[noreturn]] static void not_a_dtensor(const Tensor& t);
};

// Every rank gets its piece of src_rank's `t` (src_rank is a world rank in the mesh). Partial is
// refused. The result is a leaf that requires grad when `t` does (as in PyTorch).
DTensor distribute_tensor(const Tensor& t, const DeviceMesh& mesh, Placements placements, int64_t src_rank = 0);

// Internal (local_map, optimizers): redistribute allowing R -> P, differentiable, same mesh.
DTensor redistribute_internal(const DTensor& x, const Placements& target);

// A DTensor around `local` with a known global shape: no communication, no autograd (local is
// stored detached).
DTensor make_dtensor(const Tensor& local, const DeviceMesh& mesh, Placements placements, Shape global_shape);
// Internal: make_dtensor from parts checked before (placements normalised, one per mesh dim, of the
// local tensor's rank), as a backward node has them from its forward: it skips the checks.
DTensor wrap_checked(Tensor local, const DeviceMesh& mesh, std::span<const Placement> placements,
                     const Shape& global_shape);

std::ostream& operator<<(std::ostream& out, const DTensor& t);

}  // namespace weft::dist
