// Tensor-core (fp16 / bf16) dk, dv and d(key bias) of GPA phase 2, deterministic.
//
// One block of 4 warps per (16 keys of a key block, head-batch): the keys are the M = 16 rows of
// every mma. The block walks the cells that selected its key block, in the fixed order of the
// inverse map (CSR), each cell in chunks of 64 queries gathered into shared memory (double-
// buffered); warp w takes queries 16w..16w+15 of a chunk and keeps its own partial dk, dv. At the
// end the four partials are added in warp order through shared memory. No atomics anywhere, so the
// result is bitwise reproducible.
#pragma once
#include "gpa_tc_fwd.cuh"

namespace gpa {

constexpr int kKeysPerBlock = 16;

template <int D>
constexpr size_t dkdv_tc_smem_bytes() {
  using T = TcTile<D>;
  return size_t(2 * kKeysPerBlock + 4 * kBlockM) * T::kLd * 2 +
         (4 * kBlockM + kKeysPerBlock) * sizeof(float) + kKeysPerBlock * sizeof(int);
}

// Keys and values stay in registers as A fragments at D = 32; above, they are re-read from
// shared memory at every use: 124 instead of 166 registers at D = 64 (4 blocks per SM, not 3).
template <int D>
struct KvFragments {
  static constexpr bool kInRegisters = D <= 32;
  uint32_t k[kInRegisters ? D / 16 : 1][4];
  uint32_t v[kInRegisters ? D / 16 : 1][4];
};

template <class Tag, int D, int NT>
__device__ __forceinline__ void mma_rows_bt(const uint16_t* a_rows, const uint16_t* b_rows,
                                            float (&acc)[NT][4]) {
  // acc[nt] += A(16 x D, rows a_rows) * B^T (rows nt*8 + g of b_rows), A read from shared memory.
  using T = TcTile<D>;
  const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[4];
    a[0] = lds32(a_rows + g * T::kLd + kk * 16 + 2 * t);
    a[1] = lds32(a_rows + (g + 8) * T::kLd + kk * 16 + 2 * t);
    a[2] = lds32(a_rows + g * T::kLd + kk * 16 + 8 + 2 * t);
    a[3] = lds32(a_rows + (g + 8) * T::kLd + kk * 16 + 8 + 2 * t);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const uint16_t* b = b_rows + (nt * 8 + g) * T::kLd + kk * 16 + 2 * t;
      mma16816(Tag{}, acc[nt], a, lds32(b), lds32(b + 8));
    }
  }
}

// Adds the four warps' partial 16 x D accumulators in warp order and writes the valid key rows.
template <class Tag, int D>
__device__ __forceinline__ void reduce_and_store_keys(const float (&acc)[D / 8][4], float factor,
                                                      float* red, const int* token_s,
                                                      uint16_t* dst) {
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  float* mine = red + warp * kKeysPerBlock * D;
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt) {
    mine[g * D + nt * 8 + 2 * t] = acc[nt][0];
    mine[g * D + nt * 8 + 2 * t + 1] = acc[nt][1];
    mine[(g + 8) * D + nt * 8 + 2 * t] = acc[nt][2];
    mine[(g + 8) * D + nt * 8 + 2 * t + 1] = acc[nt][3];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kKeysPerBlock * D; e += kThreads) {
    const int row = e / D;
    float sum = red[e];
#pragma unroll
    for (int w = 1; w < kWarps; ++w) sum += red[w * kKeysPerBlock * D + e];
    if (token_s[row] >= 0) dst[int64_t(token_s[row]) * D + (e - row * D)] = from_float(Tag{}, sum * factor);
  }
  __syncthreads();
}

template <class Tag, int D>
__global__ void __launch_bounds__(kThreads) gpa_dkdv_tc_kernel(const Params p) {
  using T = TcTile<D>;
  constexpr int LD = T::kLd, KM = kKeysPerBlock;
  GPA_DYNAMIC_SMEM(smem);
  uint16_t* k_s = reinterpret_cast<uint16_t*>(smem);         // [KM][LD]
  uint16_t* v_s = k_s + KM * LD;                              // [KM][LD]
  uint16_t* q_s = v_s + KM * LD;                              // [2][kBlockM][LD]
  uint16_t* do_s = q_s + 2 * kBlockM * LD;                    // [2][kBlockM][LD]
  float* lse_s = reinterpret_cast<float*>(do_s + 2 * kBlockM * LD);  // [2][kBlockM], base 2
  float* delta_s = lse_s + 2 * kBlockM;                       // [2][kBlockM]
  float* bias_s = delta_s + 2 * kBlockM;                      // [KM], base 2
  int* token_s = reinterpret_cast<int*>(bias_s + KM);         // [KM], -1 past the block's end
  float* red = reinterpret_cast<float*>(q_s);  // [kWarps][KM][D] after the loop (fits in q_s, do_s)

  const int tiles_per_block = (p.p2 + KM - 1) / KM;
  const int block = blockIdx.x / tiles_per_block;
  const int r0 = (blockIdx.x - block * tiles_per_block) * KM;
  const int bh = p.bh0 + blockIdx.y;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  const int64_t q_base = int64_t(bh) * p.hq * p.wq, k_base = int64_t(bh) * p.hk * p.wk;
  const uint16_t* q = static_cast<const uint16_t*>(p.q) + q_base * D;
  const uint16_t* dout = static_cast<const uint16_t*>(p.dout) + q_base * D;
  const float* lse = p.lse + q_base;
  const float* delta = p.delta + q_base;

  // This block's keys: their tokens, biases, and rows of k and v.
  for (int row = threadIdx.x; row < KM; row += kThreads) {
    const int token = r0 + row < p.p2 ? block_token(p, block, r0 + row) : -1;
    token_s[row] = token;
    bias_s[row] = slot_bias_log2(p.key_bias ? p.key_bias + k_base : nullptr, token);
  }
  for (int c = threadIdx.x; c < KM * T::kChunks; c += kThreads) {
    const int row = c / T::kChunks, part = c - row * T::kChunks;
    const bool valid = r0 + row < p.p2;
    const int64_t offset = valid ? (k_base + block_token(p, block, r0 + row)) * D + part * 8 : 0;
    cp_async16(k_s + row * LD + part * 8, static_cast<const uint16_t*>(p.k) + offset, valid);
    cp_async16(v_s + row * LD + part * 8, static_cast<const uint16_t*>(p.v) + offset, valid);
  }

  // Work items: (entry of the inverse map, 64-query chunk of that cell).
  const int32_t first = p.csr_offsets[int64_t(bh) * p.n_key_blocks + block];
  const int32_t last = p.csr_offsets[int64_t(bh) * p.n_key_blocks + block + 1];
  const int chunks = (p.nq_cell + kBlockM - 1) / kBlockM;
  const int n_items = (last - first) * chunks;
  auto load_item = [&](int item, int buf) {
    const int cell_idx = p.csr_cells[first + item / chunks];
    const int q0 = (item % chunks) * kBlockM;
    load_query_rows<D>(p, q, cell_idx, q0, kBlockM, q_s + buf * kBlockM * LD);
    load_query_rows<D>(p, dout, cell_idx, q0, kBlockM, do_s + buf * kBlockM * LD);
    for (int row = threadIdx.x; row < kBlockM; row += kThreads) {
      const int i = q0 + row;
      const int token = i < p.nq_cell ? query_token(p, cell_idx, i) : -1;
      lse_s[buf * kBlockM + row] = token >= 0 ? lse[token] * kLog2e : kPosInf;  // P = 0 if empty
      delta_s[buf * kBlockM + row] = token >= 0 ? delta[token] : 0.f;
    }
  };
  if (n_items > 0) load_item(0, 0);
  cp_async_commit();

  KvFragments<D> kv;
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int nt = 0; nt < D / 8; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) dk[nt][i] = dv[nt][i] = 0.f;
  float dbias[2] = {0.f, 0.f};  // this lane's part of sum_i dS_ij for keys g and g + 8

  for (int item = 0; item < n_items; ++item) {
    const int buf = item & 1;
    if (item + 1 < n_items) load_item(item + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if constexpr (KvFragments<D>::kInRegisters) {
      if (item == 0) {
        load_a_fragments<D>(k_s, kv.k);
        load_a_fragments<D>(v_s, kv.v);
      }
    }
    const uint16_t* qw = q_s + (buf * kBlockM + warp * 16) * LD;    // this warp's 16 queries
    const uint16_t* dow = do_s + (buf * kBlockM + warp * 16) * LD;
    const float* lse_w = lse_s + buf * kBlockM + warp * 16;
    const float* delta_w = delta_s + buf * kBlockM + warp * 16;

    float st[2][4], dpt[2][4];  // S^T and dP^T: 16 keys x 16 queries
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) st[nt][i] = dpt[nt][i] = 0.f;
    if constexpr (KvFragments<D>::kInRegisters) {
      mma_a_bt<Tag, D, 2>(kv.k, qw, st);    // K Q^T
      mma_a_bt<Tag, D, 2>(kv.v, dow, dpt);  // V dO^T
    } else {
      mma_rows_bt<Tag, D, 2>(k_s, qw, st);
      mma_rows_bt<Tag, D, 2>(v_s, dow, dpt);
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int col = nt * 8 + 2 * t + (i & 1);  // query within the warp's 16
        st[nt][i] = gpa_exp2(st[nt][i] * p.scale_log2 + bias_s[g + 8 * (i >> 1)] - lse_w[col]);
        dpt[nt][i] = st[nt][i] * (dpt[nt][i] - delta_w[col]);  // dS^T
        dbias[i >> 1] += dpt[nt][i];
      }
    mma_p_b<Tag, D, 1>(st, dow, dv);   // dV += P^T dO
    mma_p_b<Tag, D, 1>(dpt, qw, dk);   // dK += dS^T Q
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();  // k_s, v_s landed (and are no longer read) even when there was no work item

  uint16_t* dk_out = static_cast<uint16_t*>(p.dk) + k_base * D;
  uint16_t* dv_out = static_cast<uint16_t*>(p.dv) + k_base * D;
  reduce_and_store_keys<Tag, D>(dv, 1.f, red, token_s, dv_out);
  reduce_and_store_keys<Tag, D>(dk, p.scale, red, token_s, dk_out);
  if (p.dbias) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      dbias[r] += shfl_xor(dbias[r], 1);
      dbias[r] += shfl_xor(dbias[r], 2);
    }
    if (t == 0) {
      red[warp * KM + g] = dbias[0];
      red[warp * KM + g + 8] = dbias[1];
    }
    __syncthreads();
    if (threadIdx.x < KM && token_s[threadIdx.x] >= 0) {
      float sum = red[threadIdx.x];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) sum += red[w * KM + threadIdx.x];
      p.dbias[k_base + token_s[threadIdx.x]] = sum;
    }
  }
}

}  // namespace gpa
