// Fused GPA phase 1: for every query cell, the topk key blocks by the mean over the cell's
// low-resolution queries of softmax_j s(q̄_i, k̄_j), without ever writing a score to global memory.
//
// Inputs are the pooled grids, prepared in torch (average pools are memory-bound and cheap):
//   q rows (BH, K * r, D): the r = (cell/pool)^2 low-resolution queries of cell 0, then of cell 1...
//   k rows (BH, Nb, D):    the low-resolution keys (one per key block), row-major over the blocks.
// Each is given as a bf16 pair hi + lo with hi = bf16(x) and lo = bf16(x - hi), so that
// hi*hi + hi*lo + lo*hi carries about 16 significant bits of x*y through the bf16 tensor cores
// (float32 accumulation); with lo = null, only hi*hi (bf16 accuracy, three times fewer mma).
//
// One block of 4 warps owns a group of whole cells: G = floor(64 / r) cells, G * r <= 64 rows,
// 16 rows per warp as mma A fragments in registers. It sweeps all key tiles twice:
//   sweep 1: each row's running max and sum of 2^(s2 - max) (the online softmax): its log-sum-exp;
//   sweep 2: P = 2^(s2 - lse2) per (row, key) into shared memory, summed over each cell's r rows,
//            merged into the cell's running top-k list (shared memory, best first).
// s2 = scale * log2(e) * q.k + log2(e) * key_bias is the score in base 2. Keys come in increasing
// index order, so a candidate that only ties the list's last value never enters it, and one that
// ties an entry goes after it: ties go to the lower block index, as in the torch selection.
#pragma once
#include "gpa_tc_fwd.cuh"

namespace gpa {

constexpr int kPhase1MaxRows = kBlockM;  // rows of one block: r <= 64, i.e. cell/pool <= 8

// One phase-1 call.
struct Phase1Params {
  const uint16_t* q_hi;   // (BH, K * r, D) bf16
  const uint16_t* q_lo;   // same, or null (single-term products)
  const uint16_t* k_hi;   // (BH, Nb, D) bf16
  const uint16_t* k_lo;   // same, or null
  const float* key_bias;  // (BH, Nb) natural-log units, or null
  int64_t* selection;     // (BH, K, topk) out: block indices, best first
  int bh0;                // first head-batch of this launch
  int n_cells;            // K
  int rows_per_cell;      // r
  int cells_per_block;    // G = floor(64 / r)
  int n_key_blocks;       // Nb
  int topk;
  float scale_log2;       // scale * log2(e)
};

template <int D>
struct Phase1Tile {
  static constexpr int kLd = TcTile<D>::kLd;         // 16-bit elements per shared row
  static constexpr int kBlockN = TcTile<D>::kBlockN;  // keys per tile
  static constexpr int kPLd = kBlockN + 1;            // floats per row of the probability tile
  // floats per row of the cell sums: odd, so that the merging threads (one per cell, reading the
  // same column at once) hit different banks
  static constexpr int kSLd = kBlockN + 1;
};

// Shared-memory bytes of one block: the block's q rows (hi, lo when split), which the
// probability tile of sweep 2 reuses once they sit in registers; double-buffered k tiles (hi, lo);
// key biases; the cell sums of a tile; the cells' top-k lists (value, index).
template <int D, bool Split>
__host__ __device__ constexpr size_t phase1_q_bytes() {
  using T = Phase1Tile<D>;
  const size_t q = size_t(Split ? 2 : 1) * kPhase1MaxRows * T::kLd * 2;
  const size_t probs = size_t(kPhase1MaxRows) * T::kPLd * 4;
  return (q > probs ? q : probs + 15) / 16 * 16;
}
template <int D, bool Split>
inline size_t phase1_smem_bytes(int cells_per_block, int topk) {
  using T = Phase1Tile<D>;
  return phase1_q_bytes<D, Split>() + size_t(Split ? 4 : 2) * T::kBlockN * T::kLd * 2 +
         size_t(2 * T::kBlockN + cells_per_block * T::kSLd) * 4 +
         size_t(cells_per_block) * topk * 8;
}

// cp.async of `rows` 16-bit rows (D elements each) from src rows [row0, row0 + rows) into dst;
// rows at or past n_rows are zero-filled.
template <int D>
__device__ __forceinline__ void load_rows16(const uint16_t* src, int64_t row0, int rows,
                                            int64_t n_rows, uint16_t* dst) {
  constexpr int kChunks = D / 8, LD = Phase1Tile<D>::kLd;
  for (int c = threadIdx.x; c < rows * kChunks; c += kThreads) {
    const int row = c / kChunks, part = c - row * kChunks;
    const bool valid = row0 + row < n_rows;
    const int64_t offset = valid ? (row0 + row) * D + part * 8 : 0;
    cp_async16(dst + row * LD + part * 8, src + offset, valid);
  }
}

template <int D, bool Split>
__device__ __forceinline__ void load_key_tile_phase1(const Phase1Params& p, const uint16_t* k_hi,
                                                     const uint16_t* k_lo, const float* key_bias,
                                                     int tile, uint16_t* hi_dst, uint16_t* lo_dst,
                                                     float* bias_dst) {
  constexpr int BN = Phase1Tile<D>::kBlockN;
  const int64_t j0 = int64_t(tile) * BN;
  load_rows16<D>(k_hi, j0, BN, p.n_key_blocks, hi_dst);
  if constexpr (Split) load_rows16<D>(k_lo, j0, BN, p.n_key_blocks, lo_dst);
  for (int j = threadIdx.x; j < BN; j += kThreads) {
    const int64_t block = j0 + j;
    bias_dst[j] = block >= p.n_key_blocks ? kNegInf : (key_bias ? key_bias[block] * kLog2e : 0.f);
  }
}

template <int D, bool Split>
__global__ void __launch_bounds__(kThreads) gpa_phase1_kernel(const Phase1Params p) {
  using T = Phase1Tile<D>;
  constexpr int BN = T::kBlockN, LD = T::kLd, PLD = T::kPLd, SLD = T::kSLd;
  GPA_DYNAMIC_SMEM(smem);
  uint16_t* q_hi_s = reinterpret_cast<uint16_t*>(smem);       // [64][LD]
  uint16_t* q_lo_s = q_hi_s + kPhase1MaxRows * LD;             // [64][LD] when split
  // [64][PLD] probabilities of sweep 2, over q's rows: those went into registers at step 0, and
  // at least one barrier lies between step 0 and the first write of sweep 2.
  float* p_s = reinterpret_cast<float*>(smem);
  uint16_t* k_hi_s = reinterpret_cast<uint16_t*>(smem + phase1_q_bytes<D, Split>());  // [2][BN][LD]
  uint16_t* k_lo_s = k_hi_s + 2 * BN * LD;                     // [2][BN][LD] when split
  float* bias_s = reinterpret_cast<float*>(k_hi_s + (Split ? 4 : 2) * BN * LD);  // [2][BN], base 2
  float* sum_s = bias_s + 2 * BN;                              // [G][SLD] cell sums, -inf: none
  float* top_val = sum_s + p.cells_per_block * SLD;            // [G][topk], best first
  int* top_idx = reinterpret_cast<int*>(top_val + p.cells_per_block * p.topk);  // [G][topk]

  const int G = p.cells_per_block, r = p.rows_per_cell;
  const int cell0 = blockIdx.x * G;
  const int cells_here = p.n_cells - cell0 < G ? p.n_cells - cell0 : G;
  const int rows_here = cells_here * r;  // valid rows of this block, <= 64
  const int bh = p.bh0 + blockIdx.y;
  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
  const int64_t n_rows = int64_t(p.n_cells) * r;
  const int64_t q_base = int64_t(bh) * n_rows * D, k_base = int64_t(bh) * p.n_key_blocks * D;
  const uint16_t* k_hi = p.k_hi + k_base;
  const uint16_t* k_lo = Split ? p.k_lo + k_base : nullptr;
  const float* key_bias = p.key_bias ? p.key_bias + int64_t(bh) * p.n_key_blocks : nullptr;
  const int n_tiles = (p.n_key_blocks + BN - 1) / BN;

  // The block's rows (zeros past rows_here), the first key tile, empty top-k lists.
  const int64_t row0 = int64_t(cell0) * r;
  load_rows16<D>(p.q_hi + q_base, row0, kPhase1MaxRows, row0 + rows_here, q_hi_s);
  if constexpr (Split) load_rows16<D>(p.q_lo + q_base, row0, kPhase1MaxRows, row0 + rows_here, q_lo_s);
  load_key_tile_phase1<D, Split>(p, k_hi, k_lo, key_bias, 0, k_hi_s, k_lo_s, bias_s);
  cp_async_commit();
  for (int e = threadIdx.x; e < G * p.topk; e += kThreads) {
    top_val[e] = kNegInf;
    top_idx[e] = 0x7fffffff;
  }

  uint32_t qa_hi[D / 16][4], qa_lo[Split ? D / 16 : 1][4];
  float row_max[2] = {kNegInf, kNegInf};  // rows g and g + 8 of this warp, base 2
  float row_sum[2] = {0.f, 0.f};          // this lane's part of the sum of 2^(s2 - row_max)
  float lse2[2] = {kPosInf, kPosInf};     // after sweep 1; +inf for rows past rows_here

  for (int step = 0; step < 2 * n_tiles; ++step) {
    const int tile = step < n_tiles ? step : step - n_tiles;
    const int buf = step & 1;
    if (step + 1 < 2 * n_tiles) {
      const int next = step + 1 < n_tiles ? step + 1 : step + 1 - n_tiles;
      load_key_tile_phase1<D, Split>(p, k_hi, k_lo, key_bias, next, k_hi_s + (buf ^ 1) * BN * LD,
                                     k_lo_s + (buf ^ 1) * BN * LD, bias_s + (buf ^ 1) * BN);
    }
    cp_async_commit();
    cp_async_wait<1>();  // everything but the tile just issued has landed
    __syncthreads();
    if (step == 0) {
      load_a_fragments<D>(q_hi_s + warp * 16 * LD, qa_hi);
      if constexpr (Split) load_a_fragments<D>(q_lo_s + warp * 16 * LD, qa_lo);
    }
    if (step == n_tiles) {  // sweep 1 is complete: each row's log-sum-exp, base 2
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_sum[h] += shfl_xor(row_sum[h], 1);
        row_sum[h] += shfl_xor(row_sum[h], 2);
        const int row = warp * 16 + g + 8 * h;
        lse2[h] = row < rows_here && row_sum[h] > 0.f ? row_max[h] + log2f(row_sum[h]) : kPosInf;
      }
    }

    // s = q . k over this tile: 16 rows x BN keys per warp.
    float s[BN / 8][4];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    const uint16_t* kt_hi = k_hi_s + buf * BN * LD;
    mma_a_bt<BF16, D, BN / 8>(qa_hi, kt_hi, s);
    if constexpr (Split) {
      const uint16_t* kt_lo = k_lo_s + buf * BN * LD;
      mma_a_bt<BF16, D, BN / 8>(qa_hi, kt_lo, s);
      mma_a_bt<BF16, D, BN / 8>(qa_lo, kt_hi, s);
    }
    const float* bias = bias_s + buf * BN;
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) s[nt][i] = s[nt][i] * p.scale_log2 + bias[nt * 8 + 2 * t + (i & 1)];

    if (step < n_tiles) {  // sweep 1: online max and sum
      float new_max[2] = {row_max[0], row_max[1]};
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) new_max[i >> 1] = fmaxf(new_max[i >> 1], s[nt][i]);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        new_max[h] = fmaxf(new_max[h], shfl_xor(new_max[h], 1));
        new_max[h] = fmaxf(new_max[h], shfl_xor(new_max[h], 2));
        const float base = new_max[h] == kNegInf ? 0.f : new_max[h];  // avoid inf - inf
        row_sum[h] *= gpa_exp2(row_max[h] - base);
        row_max[h] = new_max[h];
      }
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float base = row_max[i >> 1] == kNegInf ? 0.f : row_max[i >> 1];
          row_sum[i >> 1] += gpa_exp2(s[nt][i] - base);
        }
      __syncthreads();  // the next step overwrites this buffer
      continue;
    }

    // Sweep 2: probabilities into shared memory (rows past rows_here get 2^-inf = 0) ...
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = warp * 16 + g + 8 * (i >> 1), col = nt * 8 + 2 * t + (i & 1);
        p_s[row * PLD + col] = gpa_exp2(s[nt][i] - lse2[i >> 1]);
      }
    __syncthreads();
    // ... summed over each cell's rows; a sum that cannot enter the cell's list becomes -inf ...
    const int j0 = tile * BN;
    for (int e = threadIdx.x; e < cells_here * BN; e += kThreads) {
      const int c = e / BN, j = e - c * BN;
      float sum = 0.f;
      for (int i = 0; i < r; ++i) sum += p_s[(c * r + i) * PLD + j];
      const bool candidate = j0 + j < p.n_key_blocks && sum > top_val[c * p.topk + p.topk - 1];
      sum_s[c * SLD + j] = candidate ? sum : kNegInf;
    }
    __syncthreads();
    // ... and merged, in increasing block order, into the list by one thread per cell.
    if (threadIdx.x < cells_here) {
      const int c = threadIdx.x;
      float* vals = top_val + c * p.topk;
      int* idx = top_idx + c * p.topk;
      for (int j = 0; j < BN; ++j) {
        const float v = sum_s[c * SLD + j];
        if (!(v > vals[p.topk - 1])) continue;
        int at = p.topk - 1;  // shift down every entry with a smaller value
        while (at > 0 && vals[at - 1] < v) {
          vals[at] = vals[at - 1];
          idx[at] = idx[at - 1];
          --at;
        }
        vals[at] = v;
        idx[at] = j0 + j;
      }
    }
    __syncthreads();  // the next step overwrites this buffer, p_s and sum_s
  }
  cp_async_wait<0>();

  for (int e = threadIdx.x; e < cells_here * p.topk; e += kThreads) {
    const int c = e / p.topk;
    p.selection[(int64_t(bh) * p.n_cells + cell0 + c) * p.topk + (e - c * p.topk)] = top_idx[e];
  }
}

}  // namespace gpa
