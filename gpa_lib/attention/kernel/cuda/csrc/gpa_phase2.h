// Raw-pointer interface of the fused GPA kernels, phase 2 and phase 1 (no torch, no CUDA headers).
//
// Layouts (all contiguous, row-major):
//   q    (BH, Hq, Wq, D)      k, v (BH, Hk, Wk, D)      out (BH, Hq, Wq, D)
//   lse  (BH, Hq, Wq) float32, natural-log log-sum-exp of each query's scores
//   selection (BH, K, topk) int64: key-block indices, row-major over (Hk/pool, Wk/pool),
//            K = (Hq/cell)*(Wq/cell) cells row-major over the cell grid; entries must lie in
//            [0, n_key_blocks) (entries outside are treated as empty blocks by the forward and dq).
//   key_bias (BH, Hk, Wk) float32 or null: added to every score of that key (euclid affinity).
//   Scores: s_ij = scale * q_i . k_j + key_bias_j; P = softmax_j over the cell's selected keys.
// Backward inverse map (CSR): for key block b of head-batch bh, the cells that selected it are
//   csr_cells[csr_offsets[bh*n_key_blocks + b] .. csr_offsets[bh*n_key_blocks + b + 1]) (int32,
//   cell indices local to bh, in a fixed order, so that dk/dv sums are deterministic).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Element types of q, k, v, out and their gradients.
enum GpaDtype { GPA_DTYPE_F32 = 0, GPA_DTYPE_F16 = 1, GPA_DTYPE_BF16 = 2 };

// Sizes of one phase-2 call, in tokens (grids) and channels (head_dim).
typedef struct GpaShape {
  int batch_heads;  // BH = B * h
  int hq, wq;       // query grid
  int hk, wk;       // key / value grid
  int head_dim;     // D of q, k and v (the kernels need Dv == D), one of 16, 32, 64, 128
  int pool;         // side of a key block
  int cell;         // side of a query cell (a multiple of pool)
  int topk;         // selected key blocks per cell
} GpaShape;

// 0 on success; otherwise a code for gpa_error_string. All launches go to `stream` (a cudaStream_t).
int gpa_phase2_forward(const GpaShape* shape, int dtype, const void* q, const void* k,
                       const void* v, const int64_t* selection, const float* key_bias, float scale,
                       void* out, float* lse, void* stream);

// delta (BH*Hq*Wq floats) is a workspace. dbias may be null when key_bias is null.
int gpa_phase2_backward(const GpaShape* shape, int dtype, const void* q, const void* k,
                        const void* v, const void* out, const void* dout, const float* lse,
                        const int64_t* selection, const float* key_bias, float scale,
                        const int32_t* csr_offsets, const int32_t* csr_cells, float* delta,
                        void* dq, void* dk, void* dv, float* dbias, void* stream);

// 1 when the kernels exist for this dtype and head dim.
int gpa_phase2_supported(int dtype, int head_dim);

// Phase 1 (see gpa_phase1.cuh): the topk key blocks of every query cell from the pooled grids.
//   q_hi, q_lo (BH, n_cells * rows_per_cell, D) bf16: each cell's (cell/pool)^2 low-resolution
//             queries, cell after cell; k_hi, k_lo (BH, n_key_blocks, D) bf16, the low-resolution
//             keys. x = hi + lo with hi = bf16(x), lo = bf16(x - hi); q_lo and k_lo both null:
//             single-term bf16 products.
//   key_bias (BH, n_key_blocks) float32 or null; scores s = scale * q . k + key_bias.
//   selection (BH, n_cells, topk) int64 out: best first, ties to the lower block index.
typedef struct GpaPhase1Shape {
  int batch_heads;    // BH
  int n_cells;        // K
  int rows_per_cell;  // r = (cell / pool)^2, at most 64
  int n_key_blocks;   // Nb
  int head_dim;       // D, one of 16, 32, 64, 128
  int topk;           // at most n_key_blocks
} GpaPhase1Shape;

int gpa_phase1_select(const GpaPhase1Shape* shape, const void* q_hi, const void* q_lo,
                      const void* k_hi, const void* k_lo, const float* key_bias, float scale,
                      int64_t* selection, void* stream);

// 1 when the phase-1 kernel covers this head dim, rows per cell and topk.
int gpa_phase1_supported(int head_dim, int rows_per_cell, int topk);

const char* gpa_error_string(int code);

#ifdef __cplusplus
}
#endif
