// Tensor-core (fp16 / bf16) forward of GPA phase 2 and the dq half of its backward.
//
// Tiling: one block of 4 warps per (query tile of a cell, head-batch). The query tile is up to 64 of
// the cell's cell*cell queries, 16 rows per warp, kept in registers as mma A fragments. The cell's
// topk * pool^2 selected keys form a list of slots (block j / pool^2, key j % pool^2); they are
// walked in tiles of BN slots gathered by cp.async straight from the key and value grids into shared
// memory (double-buffered), so no gathered copy ever exists in global memory. Scores are kept in
// base 2 (scale * log2 e), with the usual online softmax; an empty slot gets a -inf bias and zeros.
#pragma once
#include "gpa_common.cuh"

namespace gpa {

constexpr int kBlockM = 64;  // queries per block (4 warps x 16 rows)
constexpr int kPad = 8;      // 16-bit elements of padding per shared row: rows start 4 banks apart

template <int D>
struct TcTile {
  static constexpr int kLd = D + kPad;    // shared-memory row stride, elements
  static constexpr int kChunks = D / 8;   // 16-byte chunks per row
  static constexpr int kBlockN = D <= 64 ? 64 : 32;  // key slots per tile
};

template <int D>
constexpr size_t fwd_tc_smem_bytes() {
  using T = TcTile<D>;
  return size_t(kBlockM + 4 * T::kBlockN) * T::kLd * 2 + 2 * T::kBlockN * sizeof(float);
}

template <int D>
constexpr size_t dq_tc_smem_bytes() {
  using T = TcTile<D>;
  return size_t(2 * kBlockM + 4 * T::kBlockN) * T::kLd * 2 + 2 * T::kBlockN * sizeof(float);
}

// Gathers `rows` query rows starting at cell-local query q0 into dst (zeros past the cell's end).
template <int D>
__device__ __forceinline__ void load_query_rows(const Params& p, const uint16_t* src, int cell_idx,
                                                int q0, int rows, uint16_t* dst) {
  using T = TcTile<D>;
  for (int c = threadIdx.x; c < rows * T::kChunks; c += kThreads) {
    const int row = c / T::kChunks, part = c - row * T::kChunks;
    const int i = q0 + row;
    const bool valid = i < p.nq_cell;
    const int64_t offset = valid ? int64_t(query_token(p, cell_idx, i)) * D + part * 8 : 0;
    cp_async16(dst + row * T::kLd + part * 8, src + offset, valid);
  }
}

// Gathers key-slot tile `tile` of a cell into k_dst, v_dst and its base-2 biases into bias_dst.
template <int D>
__device__ __forceinline__ void load_key_tile(const Params& p, const uint16_t* k,
                                              const uint16_t* v, const float* key_bias,
                                              const int64_t* cell_selection, int tile,
                                              uint16_t* k_dst, uint16_t* v_dst, float* bias_dst) {
  using T = TcTile<D>;
  for (int c = threadIdx.x; c < T::kBlockN * T::kChunks; c += kThreads) {
    const int row = c / T::kChunks, part = c - row * T::kChunks;
    const int token = key_slot_token(p, cell_selection, tile * T::kBlockN + row);
    const int64_t offset = token >= 0 ? int64_t(token) * D + part * 8 : 0;
    cp_async16(k_dst + row * T::kLd + part * 8, k + offset, token >= 0);
    cp_async16(v_dst + row * T::kLd + part * 8, v + offset, token >= 0);
  }
  for (int row = threadIdx.x; row < T::kBlockN; row += kThreads)
    bias_dst[row] = slot_bias_log2(key_bias, key_slot_token(p, cell_selection, tile * T::kBlockN + row));
}

// A fragments of a warp's 16 rows (row stride ld) for the D/16 k-steps of a product over D.
template <int D>
__device__ __forceinline__ void load_a_fragments(const uint16_t* rows, uint32_t (&a)[D / 16][4]) {
  using T = TcTile<D>;
  const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    a[kk][0] = lds32(rows + g * T::kLd + kk * 16 + 2 * t);
    a[kk][1] = lds32(rows + (g + 8) * T::kLd + kk * 16 + 2 * t);
    a[kk][2] = lds32(rows + g * T::kLd + kk * 16 + 8 + 2 * t);
    a[kk][3] = lds32(rows + (g + 8) * T::kLd + kk * 16 + 8 + 2 * t);
  }
}

// acc[nt] += A(16 x D) * B^T where B rows are NT*8 rows of `b_rows` (row nt*8 + g gives column g).
template <class Tag, int D, int NT>
__device__ __forceinline__ void mma_a_bt(const uint32_t (&a)[D / 16][4], const uint16_t* b_rows,
                                         float (&acc)[NT][4]) {
  using T = TcTile<D>;
  const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint16_t* b = b_rows + (nt * 8 + g) * T::kLd + kk * 16 + 2 * t;
      mma16816(Tag{}, acc[nt], a[kk], lds32(b), lds32(b + 8));
    }
}

// acc(16 x D) += P(16 x 16*KT) * B where P comes as accumulator fragments p[2*KT][4] and B is
// 16*KT rows of `b_rows` (row stride kLd), read transposed by ldmatrix.
template <class Tag, int D, int KT>
__device__ __forceinline__ void mma_p_b(const float (&p)[2 * KT][4], const uint16_t* b_rows,
                                        float (&acc)[D / 8][4]) {
  using T = TcTile<D>;
  const int lane = threadIdx.x % 32, mat = lane / 8, r = lane % 8;
#pragma unroll
  for (int kk = 0; kk < KT; ++kk) {
    const uint32_t a[4] = {pack2(Tag{}, p[2 * kk][0], p[2 * kk][1]),
                           pack2(Tag{}, p[2 * kk][2], p[2 * kk][3]),
                           pack2(Tag{}, p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           pack2(Tag{}, p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < D / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, b_rows + (kk * 16 + (mat & 1) * 8 + r) * T::kLd + np * 16 + (mat >> 1) * 8);
      mma16816(Tag{}, acc[2 * np], a, b[0], b[1]);
      mma16816(Tag{}, acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// Writes a warp's 16 x D accumulator (times row factors) into shared rows as 16-bit values.
template <class Tag, int D>
__device__ __forceinline__ void stage_rows(const float (&acc)[D / 8][4], const float (&factor)[2],
                                           uint16_t* rows) {
  using T = TcTile<D>;
  const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    sts32(rows + g * T::kLd + nt * 8 + 2 * t,
          pack2(Tag{}, acc[nt][0] * factor[0], acc[nt][1] * factor[0]));
    sts32(rows + (g + 8) * T::kLd + nt * 8 + 2 * t,
          pack2(Tag{}, acc[nt][2] * factor[1], acc[nt][3] * factor[1]));
  }
}

// Copies staged rows of a query tile to their grid tokens in dst.
template <int D>
__device__ __forceinline__ void store_query_rows(const Params& p, const uint16_t* rows,
                                                 int cell_idx, int q0, uint16_t* dst) {
  using T = TcTile<D>;
  for (int c = threadIdx.x; c < kBlockM * T::kChunks; c += kThreads) {
    const int row = c / T::kChunks, part = c - row * T::kChunks;
    const int i = q0 + row;
    if (i < p.nq_cell)
      copy16(dst + int64_t(query_token(p, cell_idx, i)) * D + part * 8, rows + row * T::kLd + part * 8);
  }
}

template <class Tag, int D>
__global__ void __launch_bounds__(kThreads) gpa_fwd_tc_kernel(const Params p) {
  using T = TcTile<D>;
  constexpr int BN = T::kBlockN, LD = T::kLd;
  GPA_DYNAMIC_SMEM(smem);
  uint16_t* q_s = reinterpret_cast<uint16_t*>(smem);        // [kBlockM][LD]
  uint16_t* k_s = q_s + kBlockM * LD;                        // [2][BN][LD]
  uint16_t* v_s = k_s + 2 * BN * LD;                         // [2][BN][LD]
  float* bias_s = reinterpret_cast<float*>(v_s + 2 * BN * LD);  // [2][BN]

  const int tiles_per_cell = (p.nq_cell + kBlockM - 1) / kBlockM;
  const int cell_idx = blockIdx.x / tiles_per_cell;
  const int q0 = (blockIdx.x - cell_idx * tiles_per_cell) * kBlockM;
  const int bh = p.bh0 + blockIdx.y;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  const int64_t q_base = int64_t(bh) * p.hq * p.wq, k_base = int64_t(bh) * p.hk * p.wk;
  const uint16_t* k = static_cast<const uint16_t*>(p.k) + k_base * D;
  const uint16_t* v = static_cast<const uint16_t*>(p.v) + k_base * D;
  const float* key_bias = p.key_bias ? p.key_bias + k_base : nullptr;
  const int64_t* cell_selection = p.selection + (int64_t(bh) * p.n_cells + cell_idx) * p.topk;
  const int n_tiles = (p.nk_cell + BN - 1) / BN;

  load_query_rows<D>(p, static_cast<const uint16_t*>(p.q) + q_base * D, cell_idx, q0, kBlockM, q_s);
  load_key_tile<D>(p, k, v, key_bias, cell_selection, 0, k_s, v_s, bias_s);
  cp_async_commit();

  uint32_t qa[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
  float row_max[2] = {kNegInf, kNegInf};  // running max of base-2 scores, rows g and g + 8
  float row_sum[2] = {0.f, 0.f};          // this lane's part of the running softmax denominator

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < n_tiles)
      load_key_tile<D>(p, k, v, key_bias, cell_selection, tile + 1, k_s + (buf ^ 1) * BN * LD,
                       v_s + (buf ^ 1) * BN * LD, bias_s + (buf ^ 1) * BN);
    cp_async_commit();
    cp_async_wait<1>();  // everything but the tile just issued has landed
    __syncthreads();
    if (tile == 0) load_a_fragments<D>(q_s + warp * 16 * LD, qa);

    float s[BN / 8][4];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    mma_a_bt<Tag, D, BN / 8>(qa, k_s + buf * BN * LD, s);

    const float* bias = bias_s + buf * BN;
    float new_max[2] = {row_max[0], row_max[1]};
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s[nt][i] = s[nt][i] * p.scale_log2 + bias[nt * 8 + 2 * t + (i & 1)];
        new_max[i >> 1] = fmaxf(new_max[i >> 1], s[nt][i]);
      }
    float base[2], alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      new_max[r] = fmaxf(new_max[r], shfl_xor(new_max[r], 1));
      new_max[r] = fmaxf(new_max[r], shfl_xor(new_max[r], 2));
      base[r] = new_max[r] == kNegInf ? 0.f : new_max[r];  // all slots empty so far: avoid inf - inf
      alpha[r] = gpa_exp2(row_max[r] - base[r]);
      row_max[r] = new_max[r];
      row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s[nt][i] = gpa_exp2(s[nt][i] - base[i >> 1]);
        row_sum[i >> 1] += s[nt][i];
      }
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) {
      o[nt][0] *= alpha[0];
      o[nt][1] *= alpha[0];
      o[nt][2] *= alpha[1];
      o[nt][3] *= alpha[1];
    }
    mma_p_b<Tag, D, BN / 16>(s, v_s + buf * BN * LD, o);
    __syncthreads();  // the next iteration overwrites this buffer
  }
  cp_async_wait<0>();

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += shfl_xor(row_sum[r], 1);
    row_sum[r] += shfl_xor(row_sum[r], 2);
    inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
  }
  stage_rows<Tag, D>(o, inv, q_s + warp * 16 * LD);  // q_s is free: the loop ended on a barrier
  if (t == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = q0 + warp * 16 + g + 8 * r;
      // A query without any key (only possible with out-of-range selections) gets out = 0 and
      // lse = +inf, which makes its probabilities 0 in the backward pass.
      if (i < p.nq_cell)
        p.lse_w[q_base + query_token(p, cell_idx, i)] =
            row_sum[r] > 0.f ? (row_max[r] + log2f(row_sum[r])) * kLn2 : kPosInf;
    }
  }
  __syncthreads();
  store_query_rows<D>(p, q_s, cell_idx, q0, static_cast<uint16_t*>(p.out_w) + q_base * D);
}

// dq_i = scale * sum_j P_ij (dP_ij - delta_i) k_j over the cell's slots, P recomputed from lse.
template <class Tag, int D>
__global__ void __launch_bounds__(kThreads) gpa_dq_tc_kernel(const Params p) {
  using T = TcTile<D>;
  constexpr int BN = T::kBlockN, LD = T::kLd;
  GPA_DYNAMIC_SMEM(smem);
  uint16_t* q_s = reinterpret_cast<uint16_t*>(smem);        // [kBlockM][LD]
  uint16_t* do_s = q_s + kBlockM * LD;                       // [kBlockM][LD]
  uint16_t* k_s = do_s + kBlockM * LD;                       // [2][BN][LD]
  uint16_t* v_s = k_s + 2 * BN * LD;                         // [2][BN][LD]
  float* bias_s = reinterpret_cast<float*>(v_s + 2 * BN * LD);  // [2][BN]

  const int tiles_per_cell = (p.nq_cell + kBlockM - 1) / kBlockM;
  const int cell_idx = blockIdx.x / tiles_per_cell;
  const int q0 = (blockIdx.x - cell_idx * tiles_per_cell) * kBlockM;
  const int bh = p.bh0 + blockIdx.y;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  const int64_t q_base = int64_t(bh) * p.hq * p.wq, k_base = int64_t(bh) * p.hk * p.wk;
  const uint16_t* k = static_cast<const uint16_t*>(p.k) + k_base * D;
  const uint16_t* v = static_cast<const uint16_t*>(p.v) + k_base * D;
  const float* key_bias = p.key_bias ? p.key_bias + k_base : nullptr;
  const int64_t* cell_selection = p.selection + (int64_t(bh) * p.n_cells + cell_idx) * p.topk;
  const int n_tiles = (p.nk_cell + BN - 1) / BN;

  load_query_rows<D>(p, static_cast<const uint16_t*>(p.q) + q_base * D, cell_idx, q0, kBlockM, q_s);
  load_query_rows<D>(p, static_cast<const uint16_t*>(p.dout) + q_base * D, cell_idx, q0, kBlockM,
                     do_s);
  load_key_tile<D>(p, k, v, key_bias, cell_selection, 0, k_s, v_s, bias_s);
  cp_async_commit();

  float lse2[2], delta[2];  // rows g and g + 8 of this warp; empty rows get P = 0
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = q0 + warp * 16 + g + 8 * r;
    const int64_t token = i < p.nq_cell ? q_base + query_token(p, cell_idx, i) : -1;
    lse2[r] = token >= 0 ? p.lse[token] * kLog2e : kPosInf;
    delta[r] = token >= 0 ? p.delta[token] : 0.f;
  }

  uint32_t qa[D / 16][4], da[D / 16][4];
  float dq[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0.f;

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < n_tiles)
      load_key_tile<D>(p, k, v, key_bias, cell_selection, tile + 1, k_s + (buf ^ 1) * BN * LD,
                       v_s + (buf ^ 1) * BN * LD, bias_s + (buf ^ 1) * BN);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (tile == 0) {
      load_a_fragments<D>(q_s + warp * 16 * LD, qa);
      load_a_fragments<D>(do_s + warp * 16 * LD, da);
    }
    float s[BN / 8][4], dp[BN / 8][4];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) s[nt][i] = dp[nt][i] = 0.f;
    mma_a_bt<Tag, D, BN / 8>(qa, k_s + buf * BN * LD, s);   // Q K^T
    mma_a_bt<Tag, D, BN / 8>(da, v_s + buf * BN * LD, dp);  // dO V^T
    const float* bias = bias_s + buf * BN;
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float prob =
            gpa_exp2(s[nt][i] * p.scale_log2 + bias[nt * 8 + 2 * t + (i & 1)] - lse2[i >> 1]);
        s[nt][i] = prob * (dp[nt][i] - delta[i >> 1]);  // dS
      }
    mma_p_b<Tag, D, BN / 16>(s, k_s + buf * BN * LD, dq);  // dS K
    __syncthreads();
  }
  cp_async_wait<0>();

  const float factor[2] = {p.scale, p.scale};
  stage_rows<Tag, D>(dq, factor, q_s + warp * 16 * LD);
  __syncthreads();
  store_query_rows<D>(p, q_s, cell_idx, q0, static_cast<uint16_t*>(p.dq) + q_base * D);
}

}  // namespace gpa
