// Raw-pointer interface of the fused GPA phase-2 kernels (no torch, no CUDA headers).
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

const char* gpa_error_string(int code);

#ifdef __cplusplus
}
#endif
