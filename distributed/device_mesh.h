// device_mesh.h: DeviceMesh, an n-dimensional arrangement of world ranks with one communicator per
// mesh dim (the ranks that differ only in that coordinate).
#pragma once

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the MPI C API only: Open MPI's deprecated C++ bindings warn under -Wextra
#endif
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace weft::dist {

// A cheap shared handle to an immutable mesh. Construction is collective over the world; slicing
// (operator[], sub_mesh) is local.
class DeviceMesh {
 public:
  DeviceMesh() = default;  // undefined
  // Every world rank must call it (MPI_Comm_split inside, once per set of mesh dims; a mesh of the same
  // shape and ranks made again reuses the communicators). ranks: world ranks in row-major mesh
  // order, empty = 0..prod(shape)-1. Names optional, unique. Ranks outside the mesh get a handle
  // with contains_this_rank() == false and MPI_COMM_NULL communicators. Without MPI initialized
  // (unit tests of planners) the mesh is metadata only, this process standing as world rank 0.
  DeviceMesh(std::vector<int64_t> shape, std::vector<std::string> dim_names = {}, std::vector<int> ranks = {});

  bool defined() const { return impl_ != nullptr; }
  int64_t ndim() const;
  int64_t size(int64_t mesh_dim) const;
  int64_t size() const;  // number of ranks
  const std::vector<int64_t>& shape() const;
  const std::vector<int>& ranks() const;  // row-major
  bool contains_this_rank() const;
  std::optional<std::vector<int64_t>> get_coordinate() const;  // nullopt when this rank is not in the mesh
  int64_t get_local_rank(int64_t mesh_dim) const;              // this rank's coordinate on mesh_dim
  MPI_Comm comm(int64_t mesh_dim) const;                        // created once
  // The whole mesh's communicator, for the control plane (control_plane.h); see Note [Mesh
  // communicators]. Its rank i is the mesh's rank mesh_comm_order()[i] (row-major), or i when empty.
  MPI_Comm mesh_comm() const;
  const std::vector<int64_t>& mesh_comm_order() const;
  int64_t dim_index(const std::string& name) const;             // error naming the known names
  DeviceMesh operator[](const std::string& name) const;         // 1-D sub-mesh through this rank
  DeviceMesh sub_mesh(const std::vector<std::string>& names) const;
  const std::vector<std::string>& dim_names() const;
  // Same ranks in the same layout (shape + ranks). Inline for the common case of one mesh object
  // shared by every DTensor on it (local_map compares each input's).
  bool operator==(const DeviceMesh& o) const { return impl_ == o.impl_ || same_layout(o); }
  bool operator!=(const DeviceMesh& o) const { return !(*this == o); }
  size_t hash() const;                         // consistent with ==
  std::string to_string() const;               // "DeviceMesh([[0, 1], [2, 3]], mesh_dim_names=(dp, tp))"

  struct Impl;

 private:
  bool same_layout(const DeviceMesh& o) const;
  explicit DeviceMesh(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  const Impl& checked() const;
  std::shared_ptr<const Impl> impl_;
};

std::ostream& operator<<(std::ostream& out, const DeviceMesh& mesh);

DeviceMesh init_device_mesh(std::vector<int64_t> shape, std::vector<std::string> dim_names = {});

}  // namespace weft::dist
