// fp32 GPA phase 2 on CUDA cores (scalar FMA): forward, dq, and dk/dv/d(key bias).
//
// Same tiling as the tensor-core kernels, with small groups of threads sharing one row: in the
// forward and dq kernels 4 threads own one query (each a quarter of D, interleaved in float4 so a
// group reads 64 contiguous bytes), in the dk/dv kernel 8 threads own one key (4 at D = 16). Dot products are
// finished with xor-shuffles, which leave the same bits in every thread of a group.
#pragma once
#include "gpa_common.cuh"

namespace gpa {

template <int D>
struct F32QueryTile {
  static constexpr int kTpq = 4;                     // threads per query
  static constexpr int kQueries = kThreads / kTpq;   // queries per block
  static constexpr int kVec = D / (4 * kTpq);        // float4 per thread
  static constexpr int kBlockN = D <= 64 ? 32 : 16;  // key slots per tile
};

template <int D>
struct F32KeyTile {
  // threads per key: 8 (a float4 each at D = 32), 4 at D = 16
  static constexpr int kTpk = D >= 32 ? 8 : 4;
  static constexpr int kKeys = kThreads / kTpk;       // keys per block (16, or 32 at D = 16)
  static constexpr int kVec = D / (4 * kTpk);         // float4 per thread
  static constexpr int kChunk = D <= 64 ? 32 : 16;    // queries per shared-memory chunk
};

template <int D>
constexpr size_t fwd_f32_smem_bytes() {
  constexpr int BN = F32QueryTile<D>::kBlockN;
  return (4 * BN * D + 2 * BN) * sizeof(float);
}
template <int D>
constexpr size_t dkdv_f32_smem_bytes() {
  constexpr int QC = F32KeyTile<D>::kChunk;
  return (4 * QC * D + 4 * QC) * sizeof(float);
}

__device__ __forceinline__ float4 zero4() {
  float4 z;
  z.x = z.y = z.z = z.w = 0.f;
  return z;
}
__device__ __forceinline__ void axpy4(float4& y, float a, float4 x) {
  y.x += a * x.x;
  y.y += a * x.y;
  y.z += a * x.z;
  y.w += a * x.w;
}
__device__ __forceinline__ void scale4(float4& y, float a) {
  y.x *= a;
  y.y *= a;
  y.z *= a;
  y.w *= a;
}
// Sum over the `width` consecutive lanes of a group (width a power of two up to 8).
template <int Width>
__device__ __forceinline__ float group_sum(float x) {
#pragma unroll
  for (int m = 1; m < Width; m *= 2) x += shfl_xor(x, m);
  return x;
}

template <int D>
__device__ __forceinline__ void load_key_tile_f32(const Params& p, const float* k, const float* v,
                                                  const float* key_bias,
                                                  const int64_t* cell_selection, int tile,
                                                  float* k_dst, float* v_dst, float* bias_dst) {
  constexpr int BN = F32QueryTile<D>::kBlockN;
  for (int c = threadIdx.x; c < BN * (D / 4); c += kThreads) {
    const int row = c / (D / 4), part = c - row * (D / 4);
    const int token = key_slot_token(p, cell_selection, tile * BN + row);
    const int64_t offset = token >= 0 ? int64_t(token) * D + part * 4 : 0;
    cp_async16(k_dst + row * D + part * 4, k + offset, token >= 0);
    cp_async16(v_dst + row * D + part * 4, v + offset, token >= 0);
  }
  for (int row = threadIdx.x; row < BN; row += kThreads)
    bias_dst[row] = slot_bias_log2(key_bias, key_slot_token(p, cell_selection, tile * BN + row));
}

// Forward (WithGrad = false) or dq (WithGrad = true) of one block of 32 queries of a cell.
template <int D, bool WithGrad>
__global__ void __launch_bounds__(kThreads) gpa_query_f32_kernel(const Params p) {
  using T = F32QueryTile<D>;
  constexpr int BN = T::kBlockN, TPQ = T::kTpq, NV = T::kVec;
  GPA_DYNAMIC_SMEM(smem);
  float* k_s = reinterpret_cast<float*>(smem);  // [2][BN][D]
  float* v_s = k_s + 2 * BN * D;                // [2][BN][D]
  float* bias_s = v_s + 2 * BN * D;             // [2][BN], base 2

  const int tiles_per_cell = (p.nq_cell + T::kQueries - 1) / T::kQueries;
  const int cell_idx = blockIdx.x / tiles_per_cell;
  const int q0 = (blockIdx.x - cell_idx * tiles_per_cell) * T::kQueries;
  const int bh = p.bh0 + blockIdx.y;
  const int row = threadIdx.x / TPQ, part = threadIdx.x % TPQ;
  const int64_t q_base = int64_t(bh) * p.hq * p.wq, k_base = int64_t(bh) * p.hk * p.wk;
  const float* k = static_cast<const float*>(p.k) + k_base * D;
  const float* v = static_cast<const float*>(p.v) + k_base * D;
  const float* key_bias = p.key_bias ? p.key_bias + k_base : nullptr;
  const int64_t* cell_selection = p.selection + (int64_t(bh) * p.n_cells + cell_idx) * p.topk;
  const int n_tiles = (p.nk_cell + BN - 1) / BN;

  load_key_tile_f32<D>(p, k, v, key_bias, cell_selection, 0, k_s, v_s, bias_s);
  cp_async_commit();

  const int i = q0 + row;
  const int64_t token = i < p.nq_cell ? q_base + query_token(p, cell_idx, i) : -1;
  float4 qv[NV], acc[NV], dov[NV];  // acc: output (forward) or dq (backward)
#pragma unroll
  for (int c = 0; c < NV; ++c) {
    const int64_t at = token * D + (c * TPQ + part) * 4;
    qv[c] = token >= 0 ? ld_f4(static_cast<const float*>(p.q) + at) : zero4();
    dov[c] = (WithGrad && token >= 0) ? ld_f4(static_cast<const float*>(p.dout) + at) : zero4();
    acc[c] = zero4();
  }
  float row_max = kNegInf, row_sum = 0.f;  // forward
  float lse2 = kPosInf, delta = 0.f;       // backward; empty rows get P = 0
  if (WithGrad && token >= 0) {
    lse2 = p.lse[token] * kLog2e;
    delta = p.delta[token];
  }

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < n_tiles)
      load_key_tile_f32<D>(p, k, v, key_bias, cell_selection, tile + 1, k_s + (buf ^ 1) * BN * D,
                           v_s + (buf ^ 1) * BN * D, bias_s + (buf ^ 1) * BN);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const float* kt = k_s + buf * BN * D;
    const float* vt = v_s + buf * BN * D;
    const float* bias = bias_s + buf * BN;
    if constexpr (!WithGrad) {
      float s[BN];
      float new_max = row_max;
#pragma unroll
      for (int j = 0; j < BN; ++j) {
        float dot = 0.f;
#pragma unroll
        for (int c = 0; c < NV; ++c) dot += dot4(qv[c], ld_f4(kt + j * D + (c * TPQ + part) * 4));
        s[j] = group_sum<TPQ>(dot) * p.scale_log2 + bias[j];
        new_max = fmaxf(new_max, s[j]);
      }
      const float base = new_max == kNegInf ? 0.f : new_max;
      const float alpha = gpa_exp2(row_max - base);
      row_max = new_max;
      row_sum *= alpha;
#pragma unroll
      for (int c = 0; c < NV; ++c) scale4(acc[c], alpha);
#pragma unroll
      for (int j = 0; j < BN; ++j) {
        const float prob = gpa_exp2(s[j] - base);
        row_sum += prob;
#pragma unroll
        for (int c = 0; c < NV; ++c) axpy4(acc[c], prob, ld_f4(vt + j * D + (c * TPQ + part) * 4));
      }
    } else {
#pragma unroll 2
      for (int j = 0; j < BN; ++j) {
        float4 kc[NV];
        float dot = 0.f, dp = 0.f;
#pragma unroll
        for (int c = 0; c < NV; ++c) {
          kc[c] = ld_f4(kt + j * D + (c * TPQ + part) * 4);
          dot += dot4(qv[c], kc[c]);
          dp += dot4(dov[c], ld_f4(vt + j * D + (c * TPQ + part) * 4));
        }
        dot = group_sum<TPQ>(dot);
        dp = group_sum<TPQ>(dp);
        const float ds = gpa_exp2(dot * p.scale_log2 + bias[j] - lse2) * (dp - delta);
#pragma unroll
        for (int c = 0; c < NV; ++c) axpy4(acc[c], ds, kc[c]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  if (token < 0) return;  // no barrier follows
  const float factor = WithGrad ? p.scale : (row_sum > 0.f ? 1.f / row_sum : 0.f);
  float* dst = static_cast<float*>(WithGrad ? p.dq : p.out_w);
#pragma unroll
  for (int c = 0; c < NV; ++c) {
    scale4(acc[c], factor);
    st_f4(dst + token * D + (c * TPQ + part) * 4, acc[c]);
  }
  if (!WithGrad && part == 0)
    p.lse_w[token] = row_sum > 0.f ? (row_max + log2f(row_sum)) * kLn2 : kPosInf;
}

// dk, dv and d(key bias) of kKeys keys of one key block, over the cells that selected it.
template <int D>
__global__ void __launch_bounds__(kThreads) gpa_dkdv_f32_kernel(const Params p) {
  using T = F32KeyTile<D>;
  constexpr int TPK = T::kTpk, NV = T::kVec, QC = T::kChunk, KM = T::kKeys;
  GPA_DYNAMIC_SMEM(smem);
  float* q_s = reinterpret_cast<float*>(smem);  // [2][QC][D]
  float* do_s = q_s + 2 * QC * D;               // [2][QC][D]
  float* lse_s = do_s + 2 * QC * D;             // [2][QC], base 2
  float* delta_s = lse_s + 2 * QC;              // [2][QC]

  const int tiles_per_block = (p.p2 + KM - 1) / KM;
  const int block = blockIdx.x / tiles_per_block;
  const int r0 = (blockIdx.x - block * tiles_per_block) * KM;
  const int bh = p.bh0 + blockIdx.y;
  const int key = threadIdx.x / TPK, part = threadIdx.x % TPK;
  const int64_t q_base = int64_t(bh) * p.hq * p.wq, k_base = int64_t(bh) * p.hk * p.wk;
  const float* q = static_cast<const float*>(p.q) + q_base * D;
  const float* dout = static_cast<const float*>(p.dout) + q_base * D;

  const int token = r0 + key < p.p2 ? block_token(p, block, r0 + key) : -1;
  const float bias = slot_bias_log2(p.key_bias ? p.key_bias + k_base : nullptr, token);
  float4 kv[NV], vv[NV], dk[NV], dv[NV];
#pragma unroll
  for (int c = 0; c < NV; ++c) {
    const int64_t at = (k_base + token) * D + (c * TPK + part) * 4;
    kv[c] = token >= 0 ? ld_f4(static_cast<const float*>(p.k) + at) : zero4();
    vv[c] = token >= 0 ? ld_f4(static_cast<const float*>(p.v) + at) : zero4();
    dk[c] = dv[c] = zero4();
  }
  float dbias = 0.f;

  const int32_t first = p.csr_offsets[int64_t(bh) * p.n_key_blocks + block];
  const int32_t last = p.csr_offsets[int64_t(bh) * p.n_key_blocks + block + 1];
  const int chunks = (p.nq_cell + QC - 1) / QC;
  const int n_items = (last - first) * chunks;
  auto load_item = [&](int item, int buf) {
    const int cell_idx = p.csr_cells[first + item / chunks];
    const int q0 = (item % chunks) * QC;
    for (int c = threadIdx.x; c < QC * (D / 4); c += kThreads) {
      const int row = c / (D / 4), col = c - row * (D / 4);
      const int i = q0 + row;
      const bool valid = i < p.nq_cell;
      const int64_t offset = valid ? int64_t(query_token(p, cell_idx, i)) * D + col * 4 : 0;
      cp_async16(q_s + (buf * QC + row) * D + col * 4, q + offset, valid);
      cp_async16(do_s + (buf * QC + row) * D + col * 4, dout + offset, valid);
    }
    for (int row = threadIdx.x; row < QC; row += kThreads) {
      const int i = q0 + row;
      const int64_t at = i < p.nq_cell ? q_base + query_token(p, cell_idx, i) : -1;
      lse_s[buf * QC + row] = at >= 0 ? p.lse[at] * kLog2e : kPosInf;
      delta_s[buf * QC + row] = at >= 0 ? p.delta[at] : 0.f;
    }
  };
  if (n_items > 0) load_item(0, 0);
  cp_async_commit();

  for (int item = 0; item < n_items; ++item) {
    const int buf = item & 1;
    if (item + 1 < n_items) load_item(item + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll 2
    for (int i = 0; i < QC; ++i) {
      const float* qi = q_s + (buf * QC + i) * D;
      const float* doi = do_s + (buf * QC + i) * D;
      float4 qc[NV], dc[NV];
      float dot = 0.f, dp = 0.f;
#pragma unroll
      for (int c = 0; c < NV; ++c) {
        qc[c] = ld_f4(qi + (c * TPK + part) * 4);
        dc[c] = ld_f4(doi + (c * TPK + part) * 4);
        dot += dot4(kv[c], qc[c]);
        dp += dot4(vv[c], dc[c]);
      }
      dot = group_sum<TPK>(dot);
      dp = group_sum<TPK>(dp);
      const float prob = gpa_exp2(dot * p.scale_log2 + bias - lse_s[buf * QC + i]);
      const float ds = prob * (dp - delta_s[buf * QC + i]);
      dbias += ds;
#pragma unroll
      for (int c = 0; c < NV; ++c) {
        axpy4(dv[c], prob, dc[c]);
        axpy4(dk[c], ds, qc[c]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  if (token < 0) return;  // no barrier follows
#pragma unroll
  for (int c = 0; c < NV; ++c) {
    const int64_t at = (k_base + token) * D + (c * TPK + part) * 4;
    scale4(dk[c], p.scale);
    st_f4(static_cast<float*>(p.dk) + at, dk[c]);
    st_f4(static_cast<float*>(p.dv) + at, dv[c]);
  }
  if (p.dbias && part == 0) p.dbias[k_base + token] = dbias;
}

}  // namespace gpa
