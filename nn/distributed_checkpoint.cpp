// nn/distributed_checkpoint.cpp: save and load of Note [Distributed checkpoint format]: the pieces each
// rank writes, the metadata rank 0 writes last, and the agreement that makes a failure everyone's.
// Reading the pieces back (block reads, overlaps) is nn/distributed_checkpoint_read.cpp's.
#include "nn/distributed_checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>

#include "autograd/grad_mode.h"
#include "distributed/control_plane.h"
#include "distributed/dtensor.h"
#include "distributed/runtime.h"
#include "distributed/sharding.h"
#include "kernels/toolkit.h"
#include "nn/checkpoint_file.h"
#include "nn/distributed_checkpoint_read.h"

namespace weft::nn {

namespace {

using detail::CheckpointEntry;
using detail::CheckpointWriter;
using detail::DcpMetadata;
using detail::SavedPiece;
using detail::SavedTensor;

// The mesh a call is collective over: the DTensors' mesh with the most ranks, which must hold every
// other DTensor's ranks and this rank. Undefined when there is no DTensor (a local call).
dist::DeviceMesh group_of(const std::vector<Tensor>& tensors, const std::string& who) {
  dist::DeviceMesh group;
  for (const Tensor& t : tensors)
    if (t.defined() && t.is_dtensor()) {
      const dist::DeviceMesh& mesh = dist::DTensor(t).device_mesh();
      if (!group.defined() || mesh.size() > group.size()) group = mesh;
    }
  if (!group.defined()) return group;
  const std::vector<int>& ranks = group.ranks();
  for (const Tensor& t : tensors)
    if (t.defined() && t.is_dtensor())
      for (int r : dist::DTensor(t).device_mesh().ranks())
        WEFT_CHECK(std::find(ranks.begin(), ranks.end(), r) != ranks.end(), who, ": the DTensors live on meshes "
                   "that no single mesh contains (rank ", r, " is outside ", group.to_string(), "); save them separately");
  WEFT_CHECK(group.contains_this_rank(), who, ": world rank ", dist::world_rank(), " is not in ", group.to_string(),
             ", the mesh of the distributed entries");
  return group;
}

// This rank's index in `group` (row-major), which is also the number of the file it writes.
int64_t index_in(const dist::DeviceMesh& group, int world_rank) {
  if (!group.defined()) return 0;
  const std::vector<int>& ranks = group.ranks();
  return std::find(ranks.begin(), ranks.end(), world_rank) - ranks.begin();
}

// Makes one rank's failure everyone's: when any rank of `group` has a `failure`, each failing rank
// raises its own message and every other rank the first failing rank's, naming that rank.
void agree(const dist::DeviceMesh& group, const std::string& failure, const char* what) {
  if (!group.defined()) {
    if (!failure.empty()) throw Error(failure);
    return;
  }
  const std::vector<int64_t> lengths =
      dist::detail::mesh_all_gather({static_cast<int64_t>(failure.size())}, group, what);
  auto first = std::find_if(lengths.begin(), lengths.end(), [](int64_t n) { return n > 0; });
  if (first == lengths.end()) return;
  const size_t r = static_cast<size_t>(first - lengths.begin()), words = (static_cast<size_t>(*first) + 7) / 8;
  std::vector<int64_t> mine(words, 0);
  if (index_in(group, dist::world_rank()) == static_cast<int64_t>(r)) std::memcpy(mine.data(), failure.data(), failure.size());
  const std::vector<int64_t> all = dist::detail::mesh_all_gather(mine, group, what);
  if (!failure.empty()) throw Error(failure);
  std::string message(reinterpret_cast<const char*>(all.data() + r * words), static_cast<size_t>(*first));
  throw Error(message + " (raised on world rank " + std::to_string(group.ranks()[r]) + ")");
}

Tensor int64_tensor(const std::vector<int64_t>& values, const Shape& shape) {
  Tensor t = kernels::make_empty(shape, kInt64, "save_distributed");
  std::copy(values.begin(), values.end(), t.data_ptr<int64_t>());
  return t;
}

// Mesh coordinate of row-major index `i`.
std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& shape) {
  std::vector<int64_t> coord(shape.size());
  for (size_t d = shape.size(); d-- > 0;) coord[d] = i % shape[d], i /= shape[d];
  return coord;
}

// `t` as the checkpoint describes it, with one piece per writing rank (data offsets still 0), and
// the data this rank (file `me`) writes in `mine`. A Partial DTensor is reduced first (collective).
SavedTensor describe(const std::string& name, const Tensor& t, const dist::DeviceMesh& group, int64_t me,
                     Tensor& mine) {
  WEFT_CHECK(t.defined(), "save_distributed: entry '", name, "' is an undefined tensor");
  SavedTensor s{name, t.dtype(), t.shape(), {}, {}, {}};
  if (!t.is_dtensor()) {
    Shape origin;
    origin.resize(static_cast<size_t>(t.dim()), 0);
    if (t.numel() > 0) s.pieces.push_back({0, 0, origin, t.shape()});
    if (me == 0) mine = t.contiguous();
    return s;
  }
  dist::DTensor d(t);
  dist::Placements target = d.placements();
  for (dist::Placement& p : target)
    if (p.is_partial()) p = dist::Replicate();
  if (target != d.placements()) d = d.redistribute(target);
  const dist::DeviceMesh& mesh = d.device_mesh();
  s.mesh_shape = mesh.shape();
  s.placements = d.placements();
  for (int64_t i = 0; i < mesh.size(); ++i) {
    const std::vector<int64_t> coord = unravel(i, mesh.shape());
    bool writes = true;  // one copy of each piece: the one at coordinate 0 of every non-Shard mesh dim
    for (size_t m = 0; m < coord.size(); ++m) writes = writes && (s.placements[m].is_shard() || coord[m] == 0);
    auto [shape, offset] = dist::local_shape_and_offset(s.global, mesh.shape(), coord, s.placements);
    if (!writes || numel_of(shape) == 0) continue;
    const int64_t file = index_in(group, mesh.ranks()[static_cast<size_t>(i)]);
    s.pieces.push_back({file, 0, offset, shape});
    if (file != me) continue;
    mine = d.spec().local.contiguous();
    WEFT_CHECK(mine.shape() == shape, "save_distributed: the local shard of '", name, "' has shape ", mine.shape(),
               " but ", dist::to_string(s.placements), " of ", s.global, " on ", mesh.to_string(), " give ", shape);
  }
  return s;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t fresh_id() {
  std::random_device device;
  const auto now = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return ((uint64_t{device()} << 32) ^ device() ^ now * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(::getpid())) &
         0x7FFFFFFFFFFFFFFFull;  // stored as int64
}

// Writes file `me`: its id, then its pieces. Returns what rank 0 needs for the metadata: size,
// checksum, the id's offset, each piece's data offset, then the block hashes.
std::vector<int64_t> write_shard(const std::string& path, uint64_t id, const std::vector<SavedTensor>& saved,
                                 const std::vector<Tensor>& mine, uint64_t block_bytes) {
  std::vector<CheckpointEntry> entries{{"dcp.id", kInt64, {1}, {}, {}}};
  for (size_t i = 0; i < saved.size(); ++i)
    if (mine[i].defined())
      entries.push_back({saved[i].name, mine[i].dtype(), mine[i].shape(), saved[i].mesh_shape, saved[i].placements});
  CheckpointWriter out(path, entries, block_bytes);
  std::vector<int64_t> offsets{static_cast<int64_t>(out.write_entry(entries[0], int64_tensor({int64_t(id)}, {1})))};
  for (size_t i = 0, e = 1; i < saved.size(); ++i)
    if (mine[i].defined()) offsets.push_back(static_cast<int64_t>(out.write_entry(entries[e++], mine[i])));
  out.commit();
  std::vector<int64_t> info{static_cast<int64_t>(out.size()), static_cast<int64_t>(out.checksum())};
  info.insert(info.end(), offsets.begin(), offsets.end());
  for (uint64_t h : out.block_hashes()) info.push_back(static_cast<int64_t>(h));
  return info;
}

// Every rank's `info` (lengths differ) in group order; a local call has only its own.
std::vector<std::vector<int64_t>> gather_rows(const std::vector<int64_t>& info, const dist::DeviceMesh& group) {
  if (!group.defined()) return {info};
  int64_t width = static_cast<int64_t>(info.size()) + 1;
  dist::detail::mesh_max(&width, 1, group, "save_distributed (shard sizes)");
  std::vector<int64_t> row(static_cast<size_t>(width), 0);
  row[0] = static_cast<int64_t>(info.size());
  std::copy(info.begin(), info.end(), row.begin() + 1);
  const std::vector<int64_t> all = dist::detail::mesh_all_gather(row, group, "save_distributed (shard files)");
  std::vector<std::vector<int64_t>> rows;
  for (size_t k = 0; k < all.size(); k += static_cast<size_t>(width))
    rows.emplace_back(all.begin() + static_cast<int64_t>(k) + 1,
                      all.begin() + static_cast<int64_t>(k) + 1 + all[k]);
  return rows;
}

// Rank 0's part: the metadata (committed last), then the files of earlier saves removed.
void write_metadata(const std::string& dir, uint64_t id, std::vector<SavedTensor> saved,
                    const std::vector<std::vector<int64_t>>& rows, uint64_t block_bytes) {
  std::vector<std::pair<CheckpointEntry, Tensor>> out;
  const int64_t files = static_cast<int64_t>(rows.size());
  out.push_back({{"dcp.header", kInt64, {4}, {}, {}},
                 int64_tensor({detail::kDcpVersion, int64_t(id), files, int64_t(block_bytes)}, {4})});
  std::vector<size_t> next(rows.size(), 3);  // each row's next piece offset
  for (SavedTensor& s : saved)
    for (SavedPiece& p : s.pieces) p.data_offset = static_cast<uint64_t>(rows[static_cast<size_t>(p.file)].at(next[p.file]++));
  for (int64_t k = 0; k < files; ++k) {
    const std::vector<int64_t>& row = rows[static_cast<size_t>(k)];
    std::vector<int64_t> v{row[0], row[1], row[2]};
    v.insert(v.end(), row.begin() + static_cast<int64_t>(next[static_cast<size_t>(k)]), row.end());
    out.push_back({{"dcp.file." + std::to_string(k), kInt64, {static_cast<int64_t>(v.size())}, {}, {}},
                   int64_tensor(v, {static_cast<int64_t>(v.size())})});
  }
  for (const SavedTensor& s : saved) {
    std::vector<int64_t> head{static_cast<int64_t>(s.dtype), static_cast<int64_t>(s.global.size())};
    head.insert(head.end(), s.global.begin(), s.global.end());
    head.push_back(static_cast<int64_t>(s.mesh_shape.size()));
    head.insert(head.end(), s.mesh_shape.begin(), s.mesh_shape.end());
    for (const dist::Placement& p : s.placements) {
      head.push_back(static_cast<int64_t>(p.kind));
      head.push_back(p.shard_dim);
    }
    out.push_back({{"tensor." + s.name, kInt64, {static_cast<int64_t>(head.size())}, {}, {}},
                   int64_tensor(head, {static_cast<int64_t>(head.size())})});
    std::vector<int64_t> table;
    for (const SavedPiece& p : s.pieces) {
      table.push_back(p.file);
      table.push_back(static_cast<int64_t>(p.data_offset));
      table.insert(table.end(), p.offset.begin(), p.offset.end());
      table.insert(table.end(), p.size.begin(), p.size.end());
    }
    const Shape shape{static_cast<int64_t>(s.pieces.size()), 2 + 2 * static_cast<int64_t>(s.global.size())};
    out.push_back({{"shards." + s.name, kInt64, shape, {}, {}}, int64_tensor(table, shape)});
  }
  std::vector<CheckpointEntry> entries;
  for (const auto& [e, t] : out) entries.push_back(e);
  CheckpointWriter writer(dir + "/" + detail::kDcpMetadataName, entries);
  for (const auto& [e, t] : out) writer.write_entry(e, t);
  writer.commit();
  // The new checkpoint is complete: the shard files of earlier saves are garbage now.
  const std::string keep = "shard-" + hex(id) + "-";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* ent = ::readdir(d)) {
      const std::string name = ent->d_name;
      if (name.rfind("shard-", 0) == 0 && name.size() > 5 && name.rfind(".weft") == name.size() - 5 &&
          name.rfind(keep, 0) != 0)
        ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
}

// "state.<i>.<field>" -> (i, field); nullopt for other keys.
std::optional<std::pair<size_t, std::string>> state_key(const std::string& key) {
  if (key.rfind("state.", 0) != 0) return std::nullopt;
  const size_t dot = key.find('.', 6);
  if (dot == std::string::npos || dot == 6 ||
      key.find_first_not_of("0123456789", 6) != dot)
    return std::nullopt;
  return std::make_pair(std::stoul(key.substr(6, dot - 6)), key.substr(dot + 1));
}

// A new DTensor like `param` around an uninitialized local shard: a load target that says where
// this rank's piece of an optimizer buffer sits.
Tensor target_like(const Tensor& param) {
  if (!param.is_dtensor()) return kernels::make_empty(param.shape(), param.dtype());
  dist::DTensor d(param);
  return dist::make_dtensor(kernels::make_empty(d.spec().local.shape(), d.dtype()), d.device_mesh(), d.placements(),
                            d.shape());
}

using Targets = std::vector<std::pair<std::string, Tensor>>;

// The optimizer's entries of the checkpoint as load targets: a per-parameter buffer shaped like its
// parameter (a DTensor one: its shard), `step` and the hyperparameters as saved. The optimizer's
// own load_state_dict checks the rest.
void add_optimizer_targets(const DcpMetadata& meta, const optim::Optimizer& optimizer, const std::string& who,
                           Targets& all) {
  const std::vector<Tensor>& params = optimizer.params();
  const StateDict current = optimizer.state_dict();
  for (const std::string& key : meta.order) {
    if (key.rfind("optim.", 0) != 0) continue;
    const std::string k = key.substr(6);
    auto sk = state_key(k);
    if (k.rfind("param_groups.", 0) == 0)
      WEFT_CHECK(current.contains(k), who, ": ", meta.path, " has hyperparameter '", k, "' that this ",
                 optimizer.name(), " does not have (saved by another optimizer?)");
    if (sk && sk->second != "step") {
      WEFT_CHECK(sk->first < params.size(), who, ": '", key, "' names parameter ", sk->first,
                 " but the optimizer has ", params.size());
      const Tensor& p = params[sk->first];
      detail::check_target(meta, key, p, "optimizer parameter " + std::to_string(sk->first));
      all.emplace_back(key, target_like(p));
    } else {
      const SavedTensor& s = meta.tensors.at(key);
      all.emplace_back(key, kernels::make_empty(s.global, s.dtype));
    }
  }
  for (const auto& [k, t] : current)
    WEFT_CHECK(k.rfind("param_groups.", 0) != 0 || meta.tensors.count("optim." + k), who, ": missing tensor 'optim.",
               k, "' (", optimizer.name(), " hyperparameter) in ", meta.path);
}


}  // namespace

std::string detail::dcp_shard_file_name(uint64_t id, int64_t file) {
  return "shard-" + hex(id) + "-" + std::to_string(file) + ".weft";
}

void save_distributed(const std::string& dir, const StateDict& state, const DistributedSaveOptions& options) {
  const std::string who = "save_distributed '" + dir + "'";
  WEFT_CHECK(options.block_bytes >= 8, who, ": block_bytes is ", options.block_bytes, "; expected at least 8");
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : state) tensors.push_back(t);
  const dist::DeviceMesh group = group_of(tensors, who);
  const int64_t me = index_in(group, dist::world_rank());
  std::vector<SavedTensor> saved;
  std::vector<Tensor> mine(state.size());
  std::string failure;  // a rank's first problem, raised on every rank by the next agree()
  {
    NoGradGuard no_grad;
    size_t i = 0;
    for (const auto& [name, t] : state) {
      try {
        saved.push_back(describe(name, t, group, me, mine[i++]));
      } catch (const std::exception& e) {
        saved.emplace_back();
        if (failure.empty()) failure = e.what();
      }
    }
  }
  // Rank 0 makes the directory and the id; every rank learns both.
  int64_t id = 0;
  if (me == 0 && failure.empty()) {
    id = static_cast<int64_t>(fresh_id());
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      failure = who + ": cannot create the directory: " + std::strerror(errno);
  }
  agree(group, failure, "save_distributed (directory)");
  if (group.defined()) id = dist::detail::mesh_all_gather({id}, group, "save_distributed (id)")[0];

  const std::string mine_path = dir + "/" + detail::dcp_shard_file_name(static_cast<uint64_t>(id), me);
  std::vector<int64_t> info;
  try {
    info = write_shard(mine_path, static_cast<uint64_t>(id), saved, mine, static_cast<uint64_t>(options.block_bytes));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  // A failed save removes its new files: the previous checkpoint stays as it was.
  auto agree_or_clean = [&](const char* what) {
    try {
      agree(group, failure, what);
    } catch (...) {
      ::unlink(mine_path.c_str());
      throw;
    }
  };
  agree_or_clean("save_distributed (shard files)");
  const std::vector<std::vector<int64_t>> rows = gather_rows(info, group);
  if (me == 0) {
    try {
      write_metadata(dir, static_cast<uint64_t>(id), saved, rows, static_cast<uint64_t>(options.block_bytes));
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  agree_or_clean("save_distributed (metadata)");
}

void load_distributed(const std::string& dir, StateDict& state, bool strict) {
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : state) tensors.push_back(t);
  const dist::DeviceMesh group = group_of(tensors, "load_distributed '" + dir + "'");
  std::vector<Tensor> values;
  std::string failure;
  try {
    const DcpMetadata meta = detail::read_dcp_metadata(dir);
    Targets targets;
    for (const auto& [name, t] : state) targets.emplace_back(name, t);
    for (const auto& [name, t] : targets) detail::check_target(meta, name, t, "the state's '" + name + "'");
    for (const std::string& name : meta.order)
      WEFT_CHECK(!strict || state.contains(name), "load_distributed '", dir, "': unexpected tensor '", name, "' in ",
                 meta.path, ": the state to fill has no entry '", name, "' (strict = false leaves such tensors out)");
    values = detail::read_targets(meta, targets);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  agree(group, failure, "load_distributed");
  detail::assign_loaded(state, values);
}

void save_distributed(const std::string& dir, const Module& model, const optim::Optimizer* optimizer,
                      const DistributedSaveOptions& options) {
  StateDict state;
  for (const auto& [name, t] : model.state_dict()) state.insert("model." + name, t);
  if (optimizer) {
    const std::vector<Tensor>& params = optimizer->params();
    for (const auto& [key, t] : optimizer->state_dict()) {
      auto sk = state_key(key);
      const Tensor* param = sk && sk->first < params.size() && sk->second != "step" ? &params[sk->first] : nullptr;
      // Buffers of a DTensor parameter live beside its shard (Note [DTensor parameters in optimizers]).
      if (param && param->is_dtensor() && t.shape() == dist::DTensor(*param).spec().local.shape()) {
        dist::DTensor d(*param);
        state.insert("optim." + key, dist::make_dtensor(t, d.device_mesh(), d.placements(), d.shape()));
      } else {
        state.insert("optim." + key, t);
      }
    }
  }
  save_distributed(dir, state, options);
}

void load_distributed(const std::string& dir, Module& model, optim::Optimizer* optimizer) {
  const std::string who = "load_distributed '" + dir + "'";
  StateDict targets = model.state_dict();
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : targets) tensors.push_back(t);
  if (optimizer)
    for (const Tensor& p : optimizer->params()) tensors.push_back(p);
  const dist::DeviceMesh group = group_of(tensors, who);
  std::vector<Tensor> values;
  StateDict loaded;  // the optimizer's, local
  std::string failure;
  try {
    const DcpMetadata meta = detail::read_dcp_metadata(dir);
    Targets all;
    for (const auto& [name, t] : targets) all.emplace_back("model." + name, t);
    for (const auto& [key, t] : all) detail::check_target(meta, key, t, "the model's '" + key.substr(6) + "'");
    for (const std::string& key : meta.order)
      WEFT_CHECK(key.rfind("model.", 0) != 0 || targets.contains(key.substr(6)), who, ": unexpected tensor '", key,
                 "' in ", meta.path, ": the model has no parameter or buffer '", key.substr(6), "'");
    const size_t model_count = all.size();
    if (optimizer) add_optimizer_targets(meta, *optimizer, who, all);
    values = detail::read_targets(meta, all);
    for (size_t i = model_count; i < all.size(); ++i) loaded.insert(all[i].first.substr(6), values[i]);
    values.resize(model_count);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  agree(group, failure, "load_distributed");
  // The optimizer checks everything before assigning anything; the model is assigned once it agreed.
  try {
    if (optimizer) optimizer->load_state_dict(loaded);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  agree(group, failure, "load_distributed (optimizer)");
  detail::assign_loaded(targets, values);
}

}  // namespace weft::nn
