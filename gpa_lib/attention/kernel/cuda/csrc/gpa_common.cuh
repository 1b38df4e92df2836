// Parameters shared by every GPA phase-2 kernel, and the map from (cell, slot) to grid tokens.
#pragma once
#include "gpa_device.cuh"

namespace gpa {

constexpr int kThreads = 128;  // threads per block of every phase-2 kernel
constexpr int kWarps = kThreads / 32;
constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kPosInf = __builtin_huge_valf();

// One phase-2 call. Grids are row-major token arrays per head-batch bh; see gpa_phase2.h.
struct Params {
  const void* q;               // (BH, Hq, Wq, D)
  const void* k;               // (BH, Hk, Wk, D)
  const void* v;               // (BH, Hk, Wk, D)
  const void* out;             // (BH, Hq, Wq, D), backward only
  const void* dout;            // (BH, Hq, Wq, D), backward only
  const int64_t* selection;    // (BH, K, topk) key-block indices
  const float* key_bias;       // (BH, Hk, Wk) or null
  const float* lse;            // (BH, Hq, Wq), backward only
  const float* delta;          // (BH, Hq, Wq) rowsum(dout * out), backward only
  const int32_t* csr_offsets;  // (BH * n_key_blocks + 1), backward only
  const int32_t* csr_cells;    // (BH * K * topk), backward only
  void* out_w;                 // forward: out
  float* lse_w;                // forward: lse
  float* delta_w;              // backward: delta
  void* dq;                    // backward outputs, layouts of q, k, v, key_bias
  void* dk;
  void* dv;
  float* dbias;
  int batch_heads;             // BH
  int head_dim;                // D
  int bh0;                     // first head-batch of this launch (grids are split at 65535)
  int hq, wq, hk, wk;          // grids, tokens
  int pool, cell, topk;
  int cells_w;                 // Wq / cell
  int n_cells;                 // K = (Hq / cell) * (Wq / cell)
  int blocks_w;                // Wk / pool
  int n_key_blocks;            // (Hk / pool) * (Wk / pool)
  int p2;                      // pool * pool, keys per block
  int nq_cell;                 // cell * cell, queries per cell
  int nk_cell;                 // topk * pool * pool, keys per cell
  float scale;                 // multiplies q . k
  float scale_log2;            // scale * log2(e): scores are kept in base 2
};

// Grid token (row-major over the query grid) of the i-th query of cell `cell_idx`.
__device__ __forceinline__ int query_token(const Params& p, int cell_idx, int i) {
  const int cy = cell_idx / p.cells_w, cx = cell_idx - cy * p.cells_w;
  const int iy = i / p.cell, ix = i - iy * p.cell;
  return (cy * p.cell + iy) * p.wq + cx * p.cell + ix;
}

// Grid token of the r-th key (row-major inside the pool x pool block) of key block `block`.
__device__ __forceinline__ int block_token(const Params& p, int block, int r) {
  const int by = block / p.blocks_w, bx = block - by * p.blocks_w;
  const int ry = r / p.pool, rx = r - ry * p.pool;
  return (by * p.pool + ry) * p.wk + bx * p.pool + rx;
}

// Grid token of slot j of a cell's gathered keys (block j / pool^2, key j % pool^2), or -1 when the
// slot is past the end or its block index is out of range (then it is an empty, masked slot).
__device__ __forceinline__ int key_slot_token(const Params& p, const int64_t* cell_selection,
                                              int j) {
  if (j >= p.nk_cell) return -1;
  const int slot_block = j / p.p2;
  const int64_t block = cell_selection[slot_block];
  if (block < 0 || block >= p.n_key_blocks) return -1;
  return block_token(p, static_cast<int>(block), j - slot_block * p.p2);
}

// Base-2 bias of a key slot: -inf for an empty slot, else key_bias * log2(e) (0 without a bias).
__device__ __forceinline__ float slot_bias_log2(const float* key_bias, int token) {
  if (token < 0) return kNegInf;
  return key_bias ? key_bias[token] * kLog2e : 0.f;
}

}  // namespace gpa
