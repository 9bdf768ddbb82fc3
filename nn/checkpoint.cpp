// nn checkpoints: save/load of state dicts, models and optimizers; DTensors are gathered on save and
// resharded on load. The bytes themselves are nn/checkpoint_file.cpp's.
#include "nn/checkpoint.h"

#include <mpi.h>

#include <functional>
#include <map>
#include <optional>

#include "autograd/grad_mode.h"
#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "kernels/toolkit.h"
#include "nn/checkpoint_file.h"

namespace weft::nn {

namespace {

using detail::CheckpointEntry;
using detail::CheckpointReader;
using detail::CheckpointWriter;

// One entry to write: its metadata and how to get its full contiguous value (collective for DTensors).
struct Source {
  CheckpointEntry meta;
  std::function<Tensor()> produce;
  dist::DeviceMesh mesh;  // defined for gathered entries
};

Source plain_source(const std::string& name, const Tensor& t) {
  WEFT_CHECK(t.defined(), "save_checkpoint: entry '", name, "' is an undefined tensor");
  Source s{{name, t.dtype(), t.shape()}, [t] { return t.contiguous(); }, {}};
  return s;
}

// A shard `local` of a tensor of `global` shape laid out on `mesh` with `placements`.
Source gathered_source(const std::string& name, const Tensor& local, const dist::DeviceMesh& mesh,
                       const dist::Placements& placements, const Shape& global) {
  Source s{{name, local.dtype(), global, mesh.shape(), placements}, nullptr, mesh};
  s.produce = [=] {
    NoGradGuard no_grad;
    return dist::make_dtensor(local, mesh, placements, global).full_tensor().contiguous();
  };
  return s;
}

Source source_for(const std::string& name, const Tensor& t) {
  if (!t.defined() || !t.is_dtensor()) return plain_source(name, t);
  dist::DTensor d(t);
  return gathered_source(name, d.spec().local, d.device_mesh(), d.placements(), d.shape());
}

// The maximum of `value` over every rank of `mesh` (one all-reduce per mesh dim).
int mesh_max(int value, const dist::DeviceMesh& mesh) {
  for (int64_t d = 0; d < mesh.ndim(); ++d)
    dist::check_mpi(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, mesh.comm(d)), "checkpoint status",
                    mesh.comm(d));
  return value;
}

// Note [Checkpoint memory]
// Saving gathers one entry at a time: every rank of the mesh holds that entry's full tensor while
// it is written, so the peak extra memory per rank is the largest single tensor, and only the
// mesh's first rank does file I/O. Loading reads each full tensor in turn on every rank, keeps its
// shard, and holds the whole new (local) state before assigning it: the largest full tensor plus a
// second copy of the rank's local model and optimizer state. A sharded format (one file per rank)
// would avoid the full tensors but could not reload on a different number of ranks as simply.
// The writer is the first rank of the first DTensor entry's mesh (entries on other meshes are
// gathered on theirs); a model without DTensors is written by every caller, each through its own
// temporary, so under MPI call it on one rank or accept identical concurrent writes.
void write_sources(const std::string& path, const std::vector<Source>& sources) {
  dist::DeviceMesh mesh;
  for (const Source& s : sources)
    if (s.mesh.defined()) {
      mesh = s.mesh;
      break;
    }
  WEFT_CHECK(!mesh.defined() || mesh.contains_this_rank(), "save_checkpoint '", path,
             "': this rank is not in the mesh of the distributed entries");
  const bool writes = !mesh.defined() || dist::world_rank() == mesh.ranks()[0];
  std::vector<CheckpointEntry> entries;
  for (const Source& s : sources) entries.push_back(s.meta);
  std::optional<CheckpointWriter> out;
  std::string failure;
  auto attempt = [&](const std::function<void()>& f) {
    if (!writes || !failure.empty()) return;
    try {
      f();
    } catch (const std::exception& e) {
      failure = e.what();
      out.reset();  // removes the temporary; `path` is untouched
    }
  };
  attempt([&] { out.emplace(path, entries); });
  for (const Source& s : sources) {
    Tensor value = s.produce();  // every rank of the mesh joins, even after the writer failed
    attempt([&] { out->write_entry(s.meta, value); });
  }
  attempt([&] { out->commit(); });
  // The other ranks learn whether the file is there, so that all of them throw or none does.
  bool failed = !failure.empty();
  if (mesh.defined()) failed = mesh_max(failed ? 1 : 0, mesh) != 0;
  if (!failure.empty()) throw Error(failure);
  WEFT_CHECK(!failed, "save_checkpoint '", path, "': writing failed on rank ", mesh.ranks()[0]);
}

// "state.<i>.<field>" -> (i, field); nullopt for other keys.
std::optional<std::pair<size_t, std::string>> state_key(const std::string& key) {
  if (key.rfind("state.", 0) != 0) return std::nullopt;
  size_t dot = key.find('.', 6);
  if (dot == std::string::npos || dot == 6) return std::nullopt;
  size_t index = 0;
  for (size_t i = 6; i < dot; ++i) {
    if (key[i] < '0' || key[i] > '9') return std::nullopt;
    index = index * 10 + static_cast<size_t>(key[i] - '0');
  }
  return std::make_pair(index, key.substr(dot + 1));
}

// The full tensor `full` cut to this rank's shard of DTensor `like` (a compact copy).
Tensor shard_of(const Tensor& full, const dist::DTensor& like, const std::string& path, const std::string& name) {
  for (const dist::Placement& p : like.placements())
    WEFT_CHECK(!p.is_partial(), "load_checkpoint '", path, "': '", name, "' has placements ",
               dist::to_string(like.placements()), "; Partial tensors cannot be loaded");
  const dist::DeviceMesh& mesh = like.device_mesh();
  auto coord = mesh.get_coordinate();
  WEFT_CHECK(coord.has_value(), "load_checkpoint '", path, "': this rank is not in the mesh of '", name, "'");
  auto [shape, offset] = dist::local_shape_and_offset(full.shape(), mesh.shape(), *coord, like.placements());
  Tensor piece = full;
  for (int64_t d = 0; d < full.dim(); ++d) piece = piece.narrow(d, offset[d], shape[d]);
  Tensor out = kernels::make_empty(shape, full.dtype());
  kernels::copy_into(out, piece);
  return out;
}

}  // namespace

void save_state(const std::string& path, const StateDict& state) {
  std::vector<Source> sources;
  for (const auto& [name, t] : state) sources.push_back(source_for(name, t));
  write_sources(path, sources);
}

StateDict load_state(const std::string& path) {
  CheckpointReader f(path);
  StateDict out;
  for (const CheckpointEntry& m : f.entries()) out.insert(m.name, f.read(m));
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const optim::Optimizer* optimizer) {
  std::vector<Source> sources;
  for (const auto& [name, t] : model.state_dict()) sources.push_back(source_for("model." + name, t));
  if (optimizer) {
    const auto& params = optimizer->params();
    for (const auto& [key, t] : optimizer->state_dict()) {
      auto sk = state_key(key);
      const Tensor* param = sk && sk->first < params.size() ? &params[sk->first] : nullptr;
      // A distributed optimizer keeps each buffer shaped like the parameter's local shard.
      if (param && param->is_dtensor() && sk->second != "step") {
        dist::DTensor d(*param);
        if (t.shape() == d.spec().local.shape() && t.shape() != d.shape()) {
          sources.push_back(gathered_source("optim." + key, t, d.device_mesh(), d.placements(), d.shape()));
          continue;
        }
      }
      sources.push_back(plain_source("optim." + key, t));
    }
  }
  write_sources(path, sources);
}

void load_checkpoint(const std::string& path, Module& model, optim::Optimizer* optimizer) {
  CheckpointReader f(path);
  std::map<std::string, CheckpointEntry> index;
  for (const CheckpointEntry& m : f.entries()) index.emplace(m.name, m);
  auto entry = [&](const std::string& key, const Tensor& like, const std::string& what) -> const CheckpointEntry& {
    auto it = index.find(key);
    WEFT_CHECK(it != index.end(), "load_checkpoint '", path, "': missing entry '", key, "' for ", what, " (shape ",
               like.shape(), ")");
    const CheckpointEntry& m = it->second;
    WEFT_CHECK(m.dtype == like.dtype(), "load_checkpoint '", path, "': dtype mismatch for '", key, "': the file has ",
               dtype_name(m.dtype), " but ", what, " is ", dtype_name(like.dtype()));
    WEFT_CHECK(m.shape == like.shape(), "load_checkpoint '", path, "': shape mismatch for '", key,
               "': the file has ", m.shape, " but ", what, " has ", like.shape());
    return m;
  };
  auto value_for = [&](const CheckpointEntry& m, const Tensor& like) {
    Tensor full = f.read(m);
    return like.is_dtensor() ? shard_of(full, dist::DTensor(like), path, m.name) : full;
  };

  // 1. Validate the model's entries and build its new values.
  StateDict targets = model.state_dict();
  std::vector<Tensor> values;
  for (const auto& [name, t] : targets) entry("model." + name, t, "the model's '" + name + "'");
  for (const auto& [key, m] : index)
    WEFT_CHECK(key.rfind("model.", 0) != 0 || targets.contains(key.substr(6)), "load_checkpoint '", path,
               "': unexpected entry '", key, "': the model has no parameter or buffer '", key.substr(6), "'");
  for (const auto& [name, t] : targets) values.push_back(value_for(index.at("model." + name), t));

  // 2. The optimizer's dict, checked against this optimizer, then loaded (it is all or nothing).
  if (optimizer) {
    const auto& params = optimizer->params();
    StateDict current = optimizer->state_dict();
    StateDict loaded;
    for (const auto& [key, m] : index) {
      if (key.rfind("optim.", 0) != 0) continue;
      std::string k = key.substr(6);
      auto sk = state_key(k);
      if (k.rfind("param_groups.", 0) == 0)
        WEFT_CHECK(current.contains(k), "load_checkpoint '", path, "': the file has hyperparameter '", k,
                   "' that this ", optimizer->name(), " does not have (saved by another optimizer?)");
      if (sk && sk->second != "step") {
        WEFT_CHECK(sk->first < params.size(), "load_checkpoint '", path, "': '", key, "' names parameter ",
                   sk->first, " but the optimizer has ", params.size());
        const Tensor& p = params[sk->first];
        loaded.insert(k, value_for(entry(key, p, "optimizer parameter " + std::to_string(sk->first)), p));
      } else {
        loaded.insert(k, f.read(m));
      }
    }
    for (const auto& [k, t] : current)
      WEFT_CHECK(k.rfind("param_groups.", 0) != 0 || loaded.contains(k), "load_checkpoint '", path,
                 "': missing entry 'optim.", k, "' (", optimizer->name(), " hyperparameter; ",
                 (loaded.empty() ? "the file has no optimizer state)" : "saved by another optimizer?)"));
    optimizer->load_state_dict(loaded);
  }

  // 3. Assign: every check has passed, so nothing below can fail halfway.
  detail::assign_loaded(targets, values);
}

}  // namespace weft::nn
