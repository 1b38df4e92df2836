// Launchers of the fused GPA phase-2 kernels behind the raw-pointer interface of gpa_phase2.h.
// No torch headers: `nvcc -c` of this file alone is the compile check (kernel_check.py), and g++
// with -DGPA_HOST_EMULATION builds the same launchers over the CPU emulation (tests).
#include "gpa_phase2.h"

#include "gpa_f32.cuh"
#include "gpa_phase1.cuh"
#include "gpa_tc_dkdv.cuh"
#include "gpa_tc_fwd.cuh"

#ifndef GPA_HOST_EMULATION
#define GPA_LAUNCH(kernel, grid, block, smem, stream, ...) \
  (kernel<<<grid, block, smem, stream>>>(__VA_ARGS__), int(cudaGetLastError()))
#define GPA_SET_MAX_SMEM(kernel, bytes) \
  int(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)))
typedef cudaStream_t gpa_stream_t;
#else
#define GPA_LAUNCH(kernel, grid, block, smem, stream, ...) \
  (gpa_emu::launch(kernel, grid, block, smem, __VA_ARGS__) ? int(kErrEmulation) : 0)
#define GPA_SET_MAX_SMEM(kernel, bytes) 0
typedef void* gpa_stream_t;
#endif

namespace gpa {

// Codes above any cudaError_t value.
enum : int { kErrUnsupported = 10001, kErrShape = 10002, kErrEmulation = 10003 };
constexpr int kMaxGridY = 65535;
constexpr size_t kDefaultSmem = 48 * 1024;

// delta_i = sum_d dout_id * out_id in fp32, one thread per query row.
template <class Tag, int D>
__global__ void __launch_bounds__(kThreads) gpa_delta_tc_kernel(const Params p, int64_t n_rows) {
  const int64_t row = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (row >= n_rows) return;
  const uint16_t* o = static_cast<const uint16_t*>(p.out) + row * D;
  const uint16_t* d = static_cast<const uint16_t*>(p.dout) + row * D;
  float sum = 0.f;
#pragma unroll
  for (int c = 0; c < D / 8; ++c) {
    uint32_t a[4], b[4];
    ld_u32x4(o + c * 8, a);
    ld_u32x4(d + c * 8, b);
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      sum += to_float(Tag{}, uint16_t(a[w] & 0xffffu)) * to_float(Tag{}, uint16_t(b[w] & 0xffffu));
      sum += to_float(Tag{}, uint16_t(a[w] >> 16)) * to_float(Tag{}, uint16_t(b[w] >> 16));
    }
  }
  p.delta_w[row] = sum;
}

template <int D>
__global__ void __launch_bounds__(kThreads) gpa_delta_f32_kernel(const Params p, int64_t n_rows) {
  const int64_t row = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (row >= n_rows) return;
  const float* o = static_cast<const float*>(p.out) + row * D;
  const float* d = static_cast<const float*>(p.dout) + row * D;
  float sum = 0.f;
#pragma unroll
  for (int c = 0; c < D / 4; ++c) sum += dot4(ld_f4(o + c * 4), ld_f4(d + c * 4));
  p.delta_w[row] = sum;
}

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Launches kernel over grid (grid_x, batch_heads), in slices of at most 65535 head-batches.
template <class Kernel>
int launch_over_heads(Kernel kernel, Params p, int grid_x, size_t smem, gpa_stream_t stream) {
  if (grid_x <= 0) return 0;
  if (smem > kDefaultSmem) {
    const int err = GPA_SET_MAX_SMEM(kernel, smem);
    if (err) return err;
  }
  for (int bh0 = 0; bh0 < p.batch_heads; bh0 += kMaxGridY) {
    p.bh0 = bh0;
    const int n = p.batch_heads - bh0 < kMaxGridY ? p.batch_heads - bh0 : kMaxGridY;
    const int err = GPA_LAUNCH(kernel, dim3(grid_x, n), dim3(kThreads), smem, stream, p);
    if (err) return err;
  }
  return 0;
}

template <class Kernel>
int launch_rows(Kernel kernel, const Params& p, gpa_stream_t stream) {
  const int64_t n_rows = int64_t(p.batch_heads) * p.hq * p.wq;
  const int64_t blocks = (n_rows + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) return kErrShape;
  return GPA_LAUNCH(kernel, dim3(unsigned(blocks)), dim3(kThreads), 0, stream, p, n_rows);
}

template <class Tag, int D>
int forward_tc(const Params& p, gpa_stream_t stream) {
  return launch_over_heads(gpa_fwd_tc_kernel<Tag, D>, p, p.n_cells * ceil_div(p.nq_cell, kBlockM),
                           fwd_tc_smem_bytes<D>(), stream);
}

template <class Tag, int D>
int backward_tc(const Params& p, gpa_stream_t stream) {
  int err = launch_rows(gpa_delta_tc_kernel<Tag, D>, p, stream);
  if (!err)
    err = launch_over_heads(gpa_dq_tc_kernel<Tag, D>, p, p.n_cells * ceil_div(p.nq_cell, kBlockM),
                            dq_tc_smem_bytes<D>(), stream);
  if (!err)
    err = launch_over_heads(gpa_dkdv_tc_kernel<Tag, D>, p,
                            p.n_key_blocks * ceil_div(p.p2, kKeysPerBlock),
                            dkdv_tc_smem_bytes<D>(), stream);
  return err;
}

template <int D>
int forward_f32(const Params& p, gpa_stream_t stream) {
  return launch_over_heads(gpa_query_f32_kernel<D, false>, p,
                           p.n_cells * ceil_div(p.nq_cell, F32QueryTile<D>::kQueries),
                           fwd_f32_smem_bytes<D>(), stream);
}

template <int D>
int backward_f32(const Params& p, gpa_stream_t stream) {
  int err = launch_rows(gpa_delta_f32_kernel<D>, p, stream);
  if (!err)
    err = launch_over_heads(gpa_query_f32_kernel<D, true>, p,
                            p.n_cells * ceil_div(p.nq_cell, F32QueryTile<D>::kQueries),
                            fwd_f32_smem_bytes<D>(), stream);
  if (!err)
    err = launch_over_heads(gpa_dkdv_f32_kernel<D>, p,
                            p.n_key_blocks * ceil_div(p.p2, F32KeyTile<D>::kKeys),
                            dkdv_f32_smem_bytes<D>(), stream);
  return err;
}

template <int D>
int dispatch_dtype(int dtype, bool backward, const Params& p, gpa_stream_t stream) {
  switch (dtype) {
    case GPA_DTYPE_F32:
      return backward ? backward_f32<D>(p, stream) : forward_f32<D>(p, stream);
    case GPA_DTYPE_F16:
      return backward ? backward_tc<F16, D>(p, stream) : forward_tc<F16, D>(p, stream);
    case GPA_DTYPE_BF16:
      return backward ? backward_tc<BF16, D>(p, stream) : forward_tc<BF16, D>(p, stream);
    default:
      return kErrUnsupported;
  }
}

int dispatch(int dtype, bool backward, const Params& p, gpa_stream_t stream) {
  switch (p.head_dim) {
    case 16:
      return dispatch_dtype<16>(dtype, backward, p, stream);
    case 32:
      return dispatch_dtype<32>(dtype, backward, p, stream);
    case 64:
      return dispatch_dtype<64>(dtype, backward, p, stream);
    case 128:
      return dispatch_dtype<128>(dtype, backward, p, stream);
    default:
      return kErrUnsupported;
  }
}

// Fills the derived sizes; kErrShape when the shape breaks a GPA rule or overflows int32 tokens.
int make_params(const GpaShape* s, float scale, Params* p) {
  *p = Params{};
  if (!s || s->batch_heads < 1 || s->pool < 1 || s->cell < 1 || s->topk < 1) return kErrShape;
  if (s->cell % s->pool || s->hq % s->cell || s->wq % s->cell || s->hk % s->pool ||
      s->wk % s->pool || s->hq < 1 || s->wq < 1 || s->hk < 1 || s->wk < 1)
    return kErrShape;
  const int64_t n_q = int64_t(s->hq) * s->wq, n_k = int64_t(s->hk) * s->wk;
  const int64_t nk_cell = int64_t(s->topk) * s->pool * s->pool;
  if (n_q > 0x7fffffff || n_k > 0x7fffffff || nk_cell > 0x7fffffff) return kErrShape;
  p->batch_heads = s->batch_heads;
  p->head_dim = s->head_dim;
  p->hq = s->hq;
  p->wq = s->wq;
  p->hk = s->hk;
  p->wk = s->wk;
  p->pool = s->pool;
  p->cell = s->cell;
  p->topk = s->topk;
  p->cells_w = s->wq / s->cell;
  p->n_cells = (s->hq / s->cell) * p->cells_w;
  p->blocks_w = s->wk / s->pool;
  p->n_key_blocks = (s->hk / s->pool) * p->blocks_w;
  p->p2 = s->pool * s->pool;
  p->nq_cell = s->cell * s->cell;
  p->nk_cell = int(nk_cell);
  p->scale = scale;
  p->scale_log2 = scale * kLog2e;
  return 0;
}

// Phase 1: kErrUnsupported outside gpa_phase1_supported, kErrShape for sizes that break a rule.
constexpr size_t kPhase1MaxSmem = 200 * 1024;

template <int D, bool Split>
int phase1_launch(const Phase1Params& base, int batch_heads, gpa_stream_t stream) {
  const size_t smem = phase1_smem_bytes<D, Split>(base.cells_per_block, base.topk);
  if (smem > kPhase1MaxSmem) return kErrUnsupported;
  auto kernel = gpa_phase1_kernel<D, Split>;
  if (smem > kDefaultSmem) {
    const int err = GPA_SET_MAX_SMEM(kernel, smem);
    if (err) return err;
  }
  const int grid_x = ceil_div(base.n_cells, base.cells_per_block);
  for (int bh0 = 0; bh0 < batch_heads; bh0 += kMaxGridY) {
    Phase1Params p = base;
    p.bh0 = bh0;
    const int n = batch_heads - bh0 < kMaxGridY ? batch_heads - bh0 : kMaxGridY;
    const int err = GPA_LAUNCH(kernel, dim3(grid_x, n), dim3(kThreads), smem, stream, p);
    if (err) return err;
  }
  return 0;
}

template <int D>
int phase1_dispatch_split(const Phase1Params& p, int batch_heads, gpa_stream_t stream) {
  return p.q_lo ? phase1_launch<D, true>(p, batch_heads, stream)
                : phase1_launch<D, false>(p, batch_heads, stream);
}

}  // namespace gpa

extern "C" {

int gpa_phase1_supported(int head_dim, int rows_per_cell, int topk) {
  if (rows_per_cell < 1 || rows_per_cell > gpa::kPhase1MaxRows || topk < 1) return 0;
  const int cells = gpa::kPhase1MaxRows / rows_per_cell;
  size_t smem = 0;
  switch (head_dim) {
    case 16:
      smem = gpa::phase1_smem_bytes<16, true>(cells, topk);
      break;
    case 32:
      smem = gpa::phase1_smem_bytes<32, true>(cells, topk);
      break;
    case 64:
      smem = gpa::phase1_smem_bytes<64, true>(cells, topk);
      break;
    case 128:
      smem = gpa::phase1_smem_bytes<128, true>(cells, topk);
      break;
    default:
      return 0;
  }
  return smem <= gpa::kPhase1MaxSmem;
}

int gpa_phase1_select(const GpaPhase1Shape* s, const void* q_hi, const void* q_lo,
                      const void* k_hi, const void* k_lo, const float* key_bias, float scale,
                      int64_t* selection, void* stream) {
  if (!s || !gpa_phase1_supported(s->head_dim, s->rows_per_cell, s->topk))
    return gpa::kErrUnsupported;
  if (s->batch_heads < 1 || s->n_cells < 1 || s->n_key_blocks < s->topk ||
      int64_t(s->n_cells) * s->rows_per_cell > 0x7fffffff || (q_lo == nullptr) != (k_lo == nullptr))
    return gpa::kErrShape;
  gpa::Phase1Params p{};
  p.q_hi = static_cast<const uint16_t*>(q_hi);
  p.q_lo = static_cast<const uint16_t*>(q_lo);
  p.k_hi = static_cast<const uint16_t*>(k_hi);
  p.k_lo = static_cast<const uint16_t*>(k_lo);
  p.key_bias = key_bias;
  p.selection = selection;
  p.n_cells = s->n_cells;
  p.rows_per_cell = s->rows_per_cell;
  p.cells_per_block = gpa::kPhase1MaxRows / s->rows_per_cell;
  p.n_key_blocks = s->n_key_blocks;
  p.topk = s->topk;
  p.scale_log2 = scale * gpa::kLog2e;
  const auto st = static_cast<gpa_stream_t>(stream);
  switch (s->head_dim) {
    case 16:
      return gpa::phase1_dispatch_split<16>(p, s->batch_heads, st);
    case 32:
      return gpa::phase1_dispatch_split<32>(p, s->batch_heads, st);
    case 64:
      return gpa::phase1_dispatch_split<64>(p, s->batch_heads, st);
    case 128:
      return gpa::phase1_dispatch_split<128>(p, s->batch_heads, st);
    default:
      return gpa::kErrUnsupported;
  }
}


int gpa_phase2_supported(int dtype, int head_dim) {
  return (dtype == GPA_DTYPE_F32 || dtype == GPA_DTYPE_F16 || dtype == GPA_DTYPE_BF16) &&
         (head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128);
}

int gpa_phase2_forward(const GpaShape* shape, int dtype, const void* q, const void* k,
                       const void* v, const int64_t* selection, const float* key_bias, float scale,
                       void* out, float* lse, void* stream) {
  if (!gpa_phase2_supported(dtype, shape ? shape->head_dim : 0)) return gpa::kErrUnsupported;
  gpa::Params p;
  if (const int err = gpa::make_params(shape, scale, &p)) return err;
  p.q = q;
  p.k = k;
  p.v = v;
  p.selection = selection;
  p.key_bias = key_bias;
  p.out_w = out;
  p.lse_w = lse;
  return gpa::dispatch(dtype, false, p, static_cast<gpa_stream_t>(stream));
}

int gpa_phase2_backward(const GpaShape* shape, int dtype, const void* q, const void* k,
                        const void* v, const void* out, const void* dout, const float* lse,
                        const int64_t* selection, const float* key_bias, float scale,
                        const int32_t* csr_offsets, const int32_t* csr_cells, float* delta,
                        void* dq, void* dk, void* dv, float* dbias, void* stream) {
  if (!gpa_phase2_supported(dtype, shape ? shape->head_dim : 0)) return gpa::kErrUnsupported;
  gpa::Params p;
  if (const int err = gpa::make_params(shape, scale, &p)) return err;
  p.q = q;
  p.k = k;
  p.v = v;
  p.out = out;
  p.dout = dout;
  p.lse = lse;
  p.selection = selection;
  p.key_bias = key_bias;
  p.csr_offsets = csr_offsets;
  p.csr_cells = csr_cells;
  p.delta_w = delta;
  p.delta = delta;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.dbias = key_bias ? dbias : nullptr;
  return gpa::dispatch(dtype, true, p, static_cast<gpa_stream_t>(stream));
}

const char* gpa_error_string(int code) {
  switch (code) {
    case 0:
      return "no error";
    case gpa::kErrUnsupported:
      return "unsupported dtype or head dim: the kernels cover float32, float16 and bfloat16 with "
             "D in {16, 32, 64, 128} (phase 1: D in {16, 32, 64, 128}, (cell/pool)^2 <= 64 and "
             "a top-k list that fits in shared memory)";
    case gpa::kErrShape:
      return "invalid shape: cell must be a multiple of pool, the query grid a multiple of cell, "
             "the key grid a multiple of pool, the grids below 2^31 tokens, topk at most the key "
             "blocks, and phase 1's lo parts both given or both null";
#ifdef GPA_HOST_EMULATION
    case gpa::kErrEmulation:
      return gpa_emu::first_error().c_str();
    default:
      return "unknown error";
#else
    default:
      return cudaGetErrorString(static_cast<cudaError_t>(code));
#endif
  }
}

#ifdef GPA_HOST_EMULATION
// Emulation only: 1 makes cp.async copies land at their wait_group instead of at issue.
void gpa_emulation_set_cp_async_late(int late) { gpa_emu::set_cp_async_late(late != 0); }
#endif

}  // extern "C"
