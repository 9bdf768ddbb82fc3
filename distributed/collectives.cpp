// collectives.cpp: the non-differentiable collective primitives (sync and async) over one mesh
// dim, straight to MPI on contiguous buffers. The differentiable funcol:: wrappers live in
// collectives_autograd.cpp. See Note [Functional collectives].
#include "distributed/collectives.h"

#include <climits>
#include <limits>
#include <cstring>
#include <numeric>

#include "distributed/comm_debug.h"
#include "distributed/control_plane.h"
#include "distributed/runtime.h"
#include "distributed/watchdog.h"
#include "distributed/sharding.h"
#include "kernels/elementwise.h"
#include "kernels/toolkit.h"

namespace weft::dist {

namespace detail {
namespace {

using kernels::contiguous_copy;
using kernels::copy_into;
using kernels::dense;
using kernels::make_alias;
using kernels::make_empty;

// The ranks of one mesh dim, as this rank sees them.
struct Group {
  MPI_Comm comm;
  int k;
  int me;
  int64_t mesh_dim;
};

Group group_of(const DeviceMesh& mesh, int64_t mesh_dim, const char* op) {
  WEFT_CHECK(mesh.defined(), op, ": the device mesh is undefined");
  WEFT_CHECK(mesh_dim >= -mesh.ndim() && mesh_dim < mesh.ndim(), op, ": mesh dim ", mesh_dim,
             " is out of range for ", mesh.to_string());
  int64_t d = mesh_dim < 0 ? mesh_dim + mesh.ndim() : mesh_dim;
  WEFT_CHECK(mesh.contains_this_rank(), op, ": world rank ", world_rank(), " is not in ", mesh.to_string());
  Group g{mesh.comm(d), static_cast<int>(mesh.size(d)), static_cast<int>(mesh.get_local_rank(d)), d};
  WEFT_CHECK(g.k == 1 || g.comm != MPI_COMM_NULL, op, ": MPI is not initialized (create a dist::Runtime first)");
  return g;
}

// Note [16-bit floats in collectives]
// MPI has no bfloat16 or float16 type. Moving them needs no arithmetic: all_gather, all_to_all,
// broadcast and scatter send their bits as MPI_UINT16_T, two bytes an element. Reducing them
// (all_reduce, reduce_scatter, reduce_to) widens the input to float32, reduces in float32 (avg
// divides there too) and rounds the result once into the 16-bit output (Reduced below). We widen
// rather than reduce a 2-byte type with a user-defined MPI_Op because:
// - the result is then the float32 reduction rounded once, on every rank and whatever algorithm
//   Open MPI picks. torch.distributed rounds after every step instead: torch 1.13's gloo refuses a
//   bfloat16 all_reduce ("Invalid scalar type"), and its float16 all_reduce, checked on 100k random
//   values, gives our bits on two ranks (one addition, rounded once) but differs from the float32
//   sum rounded once in 33% of the elements on four, each element's result depending on which
//   chunk of the ring it falls in (NCCL's ring also rounds at every hop). Ours is the more
//   accurate (one rounding instead of k - 1) and the same for every element;
// - a user-defined op runs through a function pointer without Open MPI's vectorised built-in
//   kernels, and it must be created after MPI_Init and freed before MPI_Finalize.
// The cost is float32's bytes on the wire, which is what these tensors moved before autocast.
// The collective's fingerprint and history (Note [Collective fingerprints], Note [Collective
// history]) carry x's own dtype, not float32: a rank passing bfloat16 where another passes float32
// is still a mismatch, though the same bytes would move.
bool is_16bit_float(DType t) { return t == DType::BFloat16 || t == DType::Float16; }
// The dtype MPI reduces a tensor of dtype t in.
DType reduced_dtype(DType t) { return is_16bit_float(t) ? DType::Float32 : t; }

// The MPI datatype moving t's elements; reductions pass reduced_dtype(t), never a 16-bit float.
MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int64: return MPI_INT64_T;
    case DType::Bool: return MPI_C_BOOL;
    case DType::UInt8: return MPI_UINT8_T;
    case DType::Int8: return MPI_INT8_T;
    case DType::Int32: return MPI_INT32_T;
    case DType::BFloat16:
    case DType::Float16: return MPI_UINT16_T;  // bits only: see Note [16-bit floats in collectives]
  }
  WEFT_ERROR("collectives: unknown dtype code ", static_cast<int>(t));
}

MPI_Op mpi_op(ReduceOp op, DType t, const char* name) {
  WEFT_CHECK(op != ReduceOp::Avg || is_floating(t), name, ": reduce op avg needs a floating tensor but got ",
             dtype_name(t));
  if (t == DType::Bool)  // MPI reduces C bools with logical ops only
    return op == ReduceOp::Sum || op == ReduceOp::Max ? MPI_LOR : MPI_LAND;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    case ReduceOp::Product: return MPI_PROD;
  }
  WEFT_ERROR(name, ": unknown reduce op");
}

int count_of(int64_t n, const char* name) {
  WEFT_CHECK(n <= INT_MAX, name, ": ", n, " elements exceed MPI's int count limit");
  return static_cast<int>(n);
}

void* ptr(const Tensor& t) { return t.raw_data(); }

int64_t prod(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= s[i];
  return p;
}

// View of `t`'s storage as a contiguous block of `shape` starting `offset` elements in.
Tensor block(const Tensor& t, const Shape& shape, int64_t offset) {
  return make_alias(t, shape, contiguous_strides(shape), t.storage_offset() + offset);
}
// The slab [start, start+len) of dim `dim` of contiguous `t`, viewed as [outer, len, inner].
Tensor slab(const Tensor& t, int64_t dim, int64_t start, int64_t len) {
  const Shape& s = t.shape();
  int64_t outer = prod(s, 0, dim), n = s[dim], inner = prod(s, dim + 1, s.size());
  return make_alias(t, Shape{outer, len, inner}, Shape{n * inner, inner, 1}, t.storage_offset() + start * inner);
}

// Note [Blocks and slabs]
// MPI sends and receives piece r of a v-collective as one contiguous block; along a tensor dim the
// pieces are slabs ([outer, size, inner] views). pack copies slabs into consecutive blocks of
// `blocks`; unpack copies consecutive blocks back into slabs. Shared by all_gather, reduce_scatter
// and all_to_all.
void pack(const Tensor& blocks, const Tensor& src, int64_t dim, const std::vector<int64_t>& sizes) {
  const int64_t outer = prod(src.shape(), 0, dim), inner = prod(src.shape(), dim + 1, src.dim());
  int64_t at = 0, start = 0;
  for (int64_t s : sizes) {
    copy_into(block(blocks, Shape{outer, s, inner}, at), slab(src, dim, start, s));
    at += outer * s * inner;
    start += s;
  }
}
void unpack(const Tensor& dst, const Tensor& blocks, int64_t dim, const std::vector<int64_t>& sizes) {
  const int64_t outer = prod(dst.shape(), 0, dim), inner = prod(dst.shape(), dim + 1, dst.dim());
  int64_t at = 0, start = 0;
  for (int64_t s : sizes) {
    copy_into(slab(dst, dim, start, s), block(blocks, Shape{outer, s, inner}, at));
    at += outer * s * inner;
    start += s;
  }
}

// What MPI sends from when x's pieces along dim go out as consecutive blocks, in `dtype`: x's dense
// elements when nothing precedes dim (the pieces are blocks already), else a packed copy.
Tensor send_blocks(const Tensor& x, int64_t dim, const std::vector<int64_t>& sizes, DType dtype) {
  if (prod(x.shape(), 0, dim) == 1) return dense(x, dtype);
  Tensor packed = make_empty(Shape{x.numel()}, dtype);
  pack(packed, dense(x), dim, sizes);  // converting as it copies
  return packed;
}

// Where MPI receives the pieces of `out` along dim as consecutive blocks, and the finish step that
// brings them there: straight into `out` when nothing precedes dim, else into a staging buffer that
// is unpacked once MPI is done. It holds the staging buffer, never the output (Note [Async
// collectives]). all_gather and all_to_all receive through it.
struct ReceiveBlocks {
  Tensor staging;  // undefined when MPI writes into the output
  int64_t dim;
  std::vector<int64_t> sizes;

  ReceiveBlocks(const Tensor& out, int64_t dim, const std::vector<int64_t>& sizes) : dim(dim), sizes(sizes) {
    if (prod(out.shape(), 0, dim) != 1) staging = make_empty(Shape{out.numel()}, out.dtype());
  }
  void* buffer(const Tensor& out) const { return (staging.defined() ? staging : out).raw_data(); }
  void operator()(const Tensor& out) const {
    if (staging.defined()) unpack(out, staging, dim, sizes);
  }
};

void divide_in_place(const Tensor& t, int64_t k) {
  visit_floating(t.dtype(), "all_reduce(avg)", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    const T inv = T(1) / static_cast<T>(k);
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] *= inv;
  });
}
// Where MPI puts a reduction's result, and the finish step that completes `out` from it: straight
// into `out`, or, for a 16-bit out, into a float32 buffer rounded into `out` once MPI is done (Note
// [16-bit floats in collectives]). Avg is a sum divided by the group's size k, before rounding.
// Like ReceiveBlocks, it holds the buffer, never the output (Note [Async collectives]).
struct Reduced {
  Tensor wide;  // undefined when MPI reduces into the output
  ReduceOp op;
  int64_t k;

  Reduced(const Tensor& out, ReduceOp op, int64_t k) : op(op), k(k) {
    if (is_16bit_float(out.dtype())) wide = make_empty(out.shape(), reduced_dtype(out.dtype()));
  }
  void* buffer(const Tensor& out) const { return (wide.defined() ? wide : out).raw_data(); }
  void operator()(const Tensor& out) const {
    const Tensor& result = wide.defined() ? wide : out;
    if (op == ReduceOp::Avg) divide_in_place(result, k);
    if (wide.defined()) copy_into(out, wide);
  }
};

// Numbers the collective on the group's communicator (and compares it across the group in debug
// mode) before anything is sent.
OpSignature begin(const Group& g, CollectiveKind kind, const Tensor& x, int reduce_op = -1, int root = -1,
                  int free_dim = -1) {
  OpSignature op = collective_signature(kind, x.defined() ? x.shape() : Shape{}, x.defined() ? static_cast<int>(x.dtype()) : -1,
                                        reduce_op, root, free_dim);
  begin_op(g.comm, op);
  return op;
}

// What MPI reads and writes until the collective completes (the count arrays of the v-forms
// included: MPI may read them until completion).
struct Plan {
  std::vector<int> scounts, sdispls, rcounts, rdispls;
};

// Note [Async collectives]
// The output tensor's pending work holds the buffers MPI uses (input, staging, count arrays) and
// a finish step (copy-out of a staging buffer, divide for avg) that runs once, after MPI_Wait.
// It refers to the output through an alias, never the output itself (no reference cycle).
class CollectiveWork final : public PendingWork {
 public:
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  OpSignature op;
  Plan plan;
  std::vector<Tensor> keep;
  std::function<void()> finish;
  std::function<void()> poison;  // on failure: what the output holds instead of MPI's partial writes
  bool done = false;

  void wait() override {
    if (done) return;
    done = true;
    try {
      wait_op(request, comm, op);
    } catch (...) {
      keep.clear();
      if (poison) poison();
      throw;
    }
    keep.clear();
    if (finish) finish();
    finish = nullptr;
  }
  ~CollectiveWork() override {
    // MPI may still be writing into buffers we are about to release (a gradient dropped in flight,
    // e.g. by zero_grad): complete the request under the watchdog like any wait, so a peer that
    // never joins ends the job with a message instead of hanging it. An MPI error has no caller to
    // go to here, and the buffers may still be in use: it aborts the job too.
    if (done || request == MPI_REQUEST_NULL || !is_initialized()) return;
    try {
      wait_op(request, comm, op);
    } catch (const std::exception& e) {
      abort_job(e.what());
    }
  }
};

// Note [No partial results]
// An MPI error (a count mismatch that MPI reports as truncation, say) raises weft::Error naming the
// collective. A sync collective then returns nothing; an async result that fails when first read is
// filled with NaN (zeros for integer and bool tensors) before the error propagates, so nothing a
// user reads afterwards holds MPI's partial writes.
void poison(const Tensor& t) {
  if (is_floating(t.dtype())) kernels::fill_out(t, std::numeric_limits<double>::quiet_NaN());
  else kernels::fill_out(t, 0);
}

// Issues the collective with the non-blocking MPI form and waits under the watchdog, unless async
// is asked for (then the output's pending work waits). call(plan, req) makes the MPI_I* call.
// finish(out_alias) completes the output. `keep` are the buffers an async collective must hold.
template <class Call, class Finish>
Tensor launch(const Group& g, const OpSignature& op, const char* what, Plan&& plan, Call&& call, Tensor out,
              Finish&& finish, bool async, std::initializer_list<Tensor> keep = {}) {
  if (!async) {
    MPI_Request req = MPI_REQUEST_NULL;
    check_mpi(call(plan, &req), what, g.comm);
    wait_op(req, g.comm, op);
    finish(out);
    return out;
  }
  auto work = std::make_shared<CollectiveWork>();
  work->plan = std::move(plan);
  work->comm = g.comm;
  work->op = op;
  work->keep.assign(keep.begin(), keep.end());
  check_mpi(call(work->plan, &work->request), what, g.comm);
  Tensor alias = make_alias(out, out.shape(), out.strides(), out.storage_offset());
  work->finish = [alias, f = std::forward<Finish>(finish)]() mutable { f(alias); };
  work->poison = [alias] { poison(alias); };
  out.impl()->pending = std::move(work);
  return out;
}

// Note [Ring all-reduce for small groups]
// Open MPI's non-blocking all-reduce (coll/libnbc, which MPI_Iallreduce reaches) picks the binomial
// algorithm for every group of fewer than 4 ranks, whatever the size: the whole buffer is sent to
// one rank, reduced there, and sent back, three steps in a row over all the bytes. Its ring
// algorithm (reduce-scatter, then all-gather, each rank reducing its own part) halves that path
// on 2 ranks: a 512 KB float sum (the TP GPT's activations) measured 83-111 us against 154-225 us,
// and no size from 1024 floats up was slower (16384 floats: 16-17 against 21-24 us; 4M floats).
// Both ranks end with the same bits (each part is reduced on one rank and copied to the other).
// So for groups of 2 ranks weft selects the ring through MPI_T (libnbc reads the setting at each
// call, when it builds the schedule) and puts the previous value back right after the call, so the
// user's own MPI_Iallreduce calls keep Open MPI's choice. Groups of 3 (also binomial) were not
// measured and keep it too; from 4 ranks libnbc itself takes ring or Rabenseifner for large
// buffers. Skipped when the variable does not exist (another MPI, or no libnbc) or the user set it
// (OMPI_MCA_coll_libnbc_iallreduce_algorithm non-zero).
class IallreduceAlgorithm {
 public:
  // Selects the ring for a group of k ranks reducing `bytes`, until destroyed, when the rule above
  // applies.
  explicit IallreduceAlgorithm(int k, size_t bytes) {
    if (k != 2 || bytes < kMinBytes || !g_ring) return;
    Control& c = control();
    if (!c.usable) return;
    int ring = 1;
    if (MPI_T_cvar_read(c.handle, &previous_) != MPI_SUCCESS || previous_ == ring) return;
    set_ = MPI_T_cvar_write(c.handle, &ring) == MPI_SUCCESS;
  }
  ~IallreduceAlgorithm() {
    if (set_) MPI_T_cvar_write(control().handle, &previous_);
  }
  IallreduceAlgorithm(const IallreduceAlgorithm&) = delete;
  IallreduceAlgorithm& operator=(const IallreduceAlgorithm&) = delete;
  static inline bool g_ring = true;
  // Below this the choice costs more than it saves: a 1-float sum took 2.7 us with the ring (and
  // the MPI_T calls) against 1.9 us without.
  static constexpr size_t kMinBytes = 4096;

 private:
  struct Control {
    bool usable = false;
    MPI_T_cvar_handle handle = nullptr;
  };
  // Looked up once (MPI_T may be initialised at any time; it is never finalised here, as MPI_T
  // keeps a count and the handle must outlive every call).
  static Control& control() {
    static Control c = [] {
      Control out;
      int provided = 0, index = -1, count = 0, value = -1;
      if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return out;
      if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) return out;
      if (MPI_T_cvar_handle_alloc(index, nullptr, &out.handle, &count) != MPI_SUCCESS || count != 1) return out;
      // A value the user chose (the MCA parameter) stays.
      out.usable = MPI_T_cvar_read(out.handle, &value) == MPI_SUCCESS && value == 0;
      return out;
    }();
    return c;
  }
  int previous_ = 0;
  bool set_ = false;
};

void displs_of(const std::vector<int>& counts, std::vector<int>& displs) {
  displs.resize(counts.size());
  int acc = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    displs[i] = acc;
    acc += counts[i];
  }
}
bool all_equal(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [&](int64_t s) { return s == v[0]; });
}

}  // namespace

Tensor all_reduce(const Tensor& x, ReduceOp op, const DeviceMesh& mesh, int64_t mesh_dim, bool async) {
  kernels::check_plain(x, "all_reduce");
  Group g = group_of(mesh, mesh_dim, "all_reduce");
  MPI_Op mop = mpi_op(op, x.dtype(), "all_reduce");
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::AllReduce, x, static_cast<int>(op));
  const DType wire = reduced_dtype(x.dtype());
  Tensor in = dense(x, wire);
  Tensor out = make_empty(x.shape(), x.dtype());
  Reduced reduced(out, op, g.k);
  const void* src = ptr(in);
  void* dst = reduced.buffer(out);
  int n = count_of(x.numel(), "all_reduce");
  MPI_Datatype type = mpi_type(wire);
  record_collective(CollectiveKind::AllReduce);
  auto call = [&, src, dst](Plan&, MPI_Request* req) {
    // Note [Ring all-reduce for small groups]
    IallreduceAlgorithm ring(g.k, static_cast<size_t>(n) * element_size(wire));
    return MPI_Iallreduce(src, dst, n, type, mop, g.comm, req);
  };
  return launch(g, sig, "MPI_Iallreduce", Plan{}, call, out, reduced, async, {in, reduced.wide});
}

void set_small_group_ring(bool on) { IallreduceAlgorithm::g_ring = on; }
bool small_group_ring() { return IallreduceAlgorithm::g_ring; }

Tensor all_gather(const Tensor& x, int64_t dim, const std::vector<int64_t>& sizes, const DeviceMesh& mesh,
                  int64_t mesh_dim, bool async) {
  kernels::check_plain(x, "all_gather");
  Group g = group_of(mesh, mesh_dim, "all_gather");
  dim = wrap_dim(dim, x.dim(), "all_gather");
  WEFT_CHECK(static_cast<int>(sizes.size()) == g.k, "all_gather: ", sizes.size(), " sizes given for ", g.k, " ranks");
  WEFT_CHECK(sizes[g.me] == x.size(dim), "all_gather: sizes says rank ", g.me, " holds ", sizes[g.me],
             " along dim ", dim, " but its tensor has shape ", x.shape());
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::AllGather, x, -1, -1, static_cast<int>(dim));
  Shape out_shape = x.shape();
  out_shape[dim] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  Tensor in = dense(x);
  Tensor out = make_empty(out_shape, x.dtype());
  const int64_t outer = prod(x.shape(), 0, dim), inner = prod(x.shape(), dim + 1, x.dim());
  ReceiveBlocks recv(out, dim, sizes);
  Plan plan;
  const bool even = all_equal(sizes);
  if (!even) {  // the v-form's count arrays (the even path allocates nothing more)
    for (int64_t s : sizes) plan.rcounts.push_back(count_of(outer * s * inner, "all_gather"));
    displs_of(plan.rcounts, plan.rdispls);
  }
  const void* src = ptr(in);
  void* dst = recv.buffer(out);
  int n = count_of(x.numel(), "all_gather");
  MPI_Datatype type = mpi_type(x.dtype());
  record_collective(CollectiveKind::AllGather);
  auto call = [&, src, dst](Plan& p, MPI_Request* req) {
    if (even)
      return MPI_Iallgather(src, n, type, dst, n, type, g.comm, req);
    return MPI_Iallgatherv(src, n, type, dst, p.rcounts.data(), p.rdispls.data(), type, g.comm, req);
  };
  return launch(g, sig, "MPI_Iallgather", std::move(plan), call, out, recv, async,
                {in, recv.staging});
}

Tensor reduce_scatter(const Tensor& x, ReduceOp op, int64_t dim, const std::vector<int64_t>& sizes,
                      const DeviceMesh& mesh, int64_t mesh_dim, bool async) {
  kernels::check_plain(x, "reduce_scatter");
  Group g = group_of(mesh, mesh_dim, "reduce_scatter");
  dim = static_cast<int64_t>(dim_index(dim, x.dim(), "reduce_scatter"));  // a 0-dim tensor has no dim to scatter
  MPI_Op mop = mpi_op(op, x.dtype(), "reduce_scatter");
  WEFT_CHECK(static_cast<int>(sizes.size()) == g.k, "reduce_scatter: ", sizes.size(), " sizes given for ", g.k,
             " ranks");
  WEFT_CHECK(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == x.size(dim), "reduce_scatter: the pieces ",
             "must sum to the size of dim ", dim, " of the input, shape ", x.shape());
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::ReduceScatter, x, static_cast<int>(op));
  const int64_t outer = prod(x.shape(), 0, dim), inner = prod(x.shape(), dim + 1, x.dim());
  const DType wire = reduced_dtype(x.dtype());
  Tensor in = send_blocks(x, dim, sizes, wire);
  Shape out_shape = x.shape();
  out_shape[dim] = sizes[g.me];
  Tensor out = make_empty(out_shape, x.dtype());
  Reduced reduced(out, op, g.k);
  Plan plan;
  const bool even = all_equal(sizes);
  if (!even)
    for (int64_t s : sizes) plan.rcounts.push_back(count_of(outer * s * inner, "reduce_scatter"));
  const void* src = ptr(in);
  void* dst = reduced.buffer(out);
  int n = count_of(out.numel(), "reduce_scatter");
  MPI_Datatype type = mpi_type(wire);
  record_collective(CollectiveKind::ReduceScatter);
  auto call = [&, src, dst](Plan& p, MPI_Request* req) {
    if (even)
      return MPI_Ireduce_scatter_block(src, dst, n, type, mop, g.comm, req);
    return MPI_Ireduce_scatter(src, dst, p.rcounts.data(), type, mop, g.comm, req);
  };
  return launch(g, sig, "MPI_Ireduce_scatter", std::move(plan), call, out, reduced, async, {in, reduced.wide});
}

Tensor all_to_all(const Tensor& x, int64_t split_dim, const std::vector<int64_t>& split_sizes, int64_t concat_dim,
                  const std::vector<int64_t>& recv_sizes, const DeviceMesh& mesh, int64_t mesh_dim, bool async) {
  kernels::check_plain(x, "all_to_all");
  Group g = group_of(mesh, mesh_dim, "all_to_all");
  split_dim = static_cast<int64_t>(dim_index(split_dim, x.dim(), "all_to_all"));
  concat_dim = static_cast<int64_t>(dim_index(concat_dim, x.dim(), "all_to_all"));
  WEFT_CHECK(static_cast<int>(split_sizes.size()) == g.k && static_cast<int>(recv_sizes.size()) == g.k,
             "all_to_all: expected ", g.k, " split sizes and ", g.k, " receive sizes but got ", split_sizes.size(),
             " and ", recv_sizes.size());
  WEFT_CHECK(std::accumulate(split_sizes.begin(), split_sizes.end(), int64_t{0}) == x.size(split_dim),
             "all_to_all: the pieces must sum to the size of split dim ", split_dim, " of the input, shape ",
             x.shape());
  WEFT_CHECK(split_dim == concat_dim || recv_sizes[g.me] == x.size(concat_dim), "all_to_all: concat sizes say rank ",
             g.me, " holds ", recv_sizes[g.me], " along dim ", concat_dim, " but its tensor has shape ", x.shape());
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::AllToAll, x, -1, static_cast<int>(split_dim), static_cast<int>(concat_dim));
  const Shape& xs = x.shape();
  const int64_t s_outer = prod(xs, 0, split_dim), s_inner = prod(xs, split_dim + 1, xs.size());
  Tensor in = send_blocks(x, split_dim, split_sizes, x.dtype());
  Shape out_shape = xs;
  if (split_dim != concat_dim) out_shape[split_dim] = split_sizes[g.me];
  out_shape[concat_dim] = std::accumulate(recv_sizes.begin(), recv_sizes.end(), int64_t{0});
  Tensor out = make_empty(out_shape, x.dtype());
  const int64_t c_outer = prod(out_shape, 0, concat_dim), c_inner = prod(out_shape, concat_dim + 1, out_shape.size());
  ReceiveBlocks recv(out, concat_dim, recv_sizes);
  Plan plan;
  for (int64_t s : split_sizes) plan.scounts.push_back(count_of(s_outer * s * s_inner, "all_to_all"));
  for (int64_t s : recv_sizes) plan.rcounts.push_back(count_of(c_outer * s * c_inner, "all_to_all"));
  displs_of(plan.scounts, plan.sdispls);
  displs_of(plan.rcounts, plan.rdispls);
  // Decided from sizes every rank agrees on (never from this rank's counts alone, which may all be
  // zero on a rank with an empty shard), so that all ranks call the same MPI collective.
  const bool even = all_equal(split_sizes) && all_equal(recv_sizes);
  const void* src = ptr(in);
  void* dst = recv.buffer(out);
  MPI_Datatype type = mpi_type(x.dtype());
  record_collective(CollectiveKind::AllToAll);
  auto call = [&, src, dst](Plan& p, MPI_Request* req) {
    if (even) {
      int n = p.scounts[0];
      return MPI_Ialltoall(src, n, type, dst, n, type, g.comm, req);
    }
    return MPI_Ialltoallv(src, p.scounts.data(), p.sdispls.data(), type, dst, p.rcounts.data(),
                                p.rdispls.data(), type, g.comm, req);
  };
  return launch(g, sig, "MPI_Ialltoall", std::move(plan), call, out, recv, async,
                {in, recv.staging});
}

Tensor broadcast(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim) {
  kernels::check_plain(x, "broadcast");
  Group g = group_of(mesh, mesh_dim, "broadcast");
  WEFT_CHECK(src >= 0 && src < g.k, "broadcast: src ", src, " is not a local rank of mesh dim ", g.mesh_dim,
             " (size ", g.k, ")");
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::Broadcast, x, -1, static_cast<int>(src));
  Tensor out = g.me == src ? contiguous_copy(x) : make_empty(x.shape(), x.dtype());
  int n = count_of(x.numel(), "broadcast");
  MPI_Datatype type = mpi_type(x.dtype());
  void* buf = ptr(out);
  record_collective(CollectiveKind::Broadcast);
  auto call = [&](Plan&, MPI_Request* req) {
    return MPI_Ibcast(buf, n, type, static_cast<int>(src), g.comm, req);
  };
  return launch(g, sig, "MPI_Ibcast", Plan{}, call, out, [](const Tensor&) {}, false);
}

Tensor reduce_to(const Tensor& x, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim) {
  kernels::check_plain(x, "reduce");
  Group g = group_of(mesh, mesh_dim, "reduce");
  WEFT_CHECK(src >= 0 && src < g.k, "reduce: root ", src, " is not a local rank of mesh dim ", g.mesh_dim);
  if (g.k == 1) return contiguous_copy(x);
  OpSignature sig = begin(g, CollectiveKind::Reduce, x, -1, static_cast<int>(src));
  const DType wire = reduced_dtype(x.dtype());
  Tensor in = dense(x, wire);
  Tensor out = make_empty(x.shape(), x.dtype());
  Reduced reduced(out, ReduceOp::Sum, g.k);
  MPI_Op mop = mpi_op(ReduceOp::Sum, x.dtype(), "reduce");
  int n = count_of(x.numel(), "reduce");
  MPI_Datatype type = mpi_type(wire);
  const void* sbuf = ptr(in);
  void* rbuf = reduced.buffer(out);
  record_collective(CollectiveKind::Reduce);
  auto call = [&](Plan&, MPI_Request* req) {
    return MPI_Ireduce(sbuf, rbuf, n, type, mop, static_cast<int>(src), g.comm, req);
  };
  bool root = g.me == src;
  return launch(g, sig, "MPI_Ireduce", Plan{}, call, out,
                [root, reduced](const Tensor& o) {
                  if (root) reduced(o);
                  else kernels::fill_out(o, 0);
                }, false);
}

Tensor scatter(const TensorList& chunks, int64_t src, const DeviceMesh& mesh, int64_t mesh_dim) {
  Group g = group_of(mesh, mesh_dim, "scatter");
  WEFT_CHECK(src >= 0 && src < g.k, "scatter: src ", src, " is not a local rank of mesh dim ", g.mesh_dim);
  const bool root = g.me == src;
  if (root) {
    WEFT_CHECK(static_cast<int>(chunks.size()) == g.k, "scatter: src must pass one chunk per rank (", g.k,
               ") but passed ", chunks.size());
    for (const Tensor& c : chunks) {
      kernels::check_plain(c, "scatter");
      WEFT_CHECK(c.dtype() == chunks[0].dtype() && c.dim() == chunks[0].dim() && c.dim() <= 8,
                 "scatter: chunks must share dtype and rank (at most 8 dims)");
    }
  }
  if (g.k == 1) return contiguous_copy(chunks.at(0));
  OpSignature sig = begin(g, CollectiveKind::Scatter, Tensor(), -1, static_cast<int>(src));
  // The chunks' geometry goes first (an internal exchange, not counted): [dtype, ndim, shape x k].
  std::vector<int64_t> meta(2 + 8 * static_cast<size_t>(g.k), 0);
  if (root) {
    meta[0] = static_cast<int64_t>(chunks[0].dtype());
    meta[1] = chunks[0].dim();
    for (int r = 0; r < g.k; ++r)
      for (int64_t d = 0; d < meta[1]; ++d) meta[2 + 8 * r + d] = chunks[r].size(d);
  }
  control_broadcast(meta.data(), static_cast<int>(meta.size()), static_cast<int>(src), g.comm, "scatter sizes");
  DType dtype = static_cast<DType>(meta[0]);
  Plan plan;
  Shape mine;
  for (int r = 0; r < g.k; ++r) {
    Shape s(meta.begin() + 2 + 8 * r, meta.begin() + 2 + 8 * r + meta[1]);
    if (r == g.me) mine = s;
    plan.scounts.push_back(count_of(numel_of(s), "scatter"));
  }
  displs_of(plan.scounts, plan.sdispls);
  Tensor packed;
  if (root) {
    packed = make_empty(Shape{plan.sdispls.back() + plan.scounts.back()}, dtype);
    for (int r = 0; r < g.k; ++r) copy_into(block(packed, chunks[r].shape(), plan.sdispls[r]), chunks[r]);
  }
  Tensor out = make_empty(mine, dtype);
  const void* sbuf = root ? ptr(packed) : nullptr;
  void* rbuf = ptr(out);
  MPI_Datatype type = mpi_type(dtype);
  int n = plan.scounts[g.me];
  record_collective(CollectiveKind::Scatter);
  auto call = [&](Plan& p, MPI_Request* req) {
    return MPI_Iscatterv(sbuf, p.scounts.data(), p.sdispls.data(), type, rbuf, n, type, static_cast<int>(src),
                               g.comm, req);
  };
  return launch(g, sig, "MPI_Iscatterv", std::move(plan), call, out, [](const Tensor&) {}, false);
}

}  // namespace detail
}  // namespace weft::dist
