// GPA phase 2 on the CPU: one (batch*head, query cell) task at a time, OpenMP over tasks.
//
// Per task: the cell's c*c queries (scaled) and the tokens of its topk selected key blocks are
// gathered into thread-local buffers that stay in cache (keys transposed, D x m with m = topk*p*p),
// S = Q K^T + key_bias is computed in register tiles of 8 (then 4, then 1) queries x 32 keys, the
// softmax per row subtracts the row maximum (a NaN anywhere in the row makes the row's output NaN),
// and O = P V in the same tiles over value channels, each output row divided by its denominator.
// The backward pass (below) recomputes each cell's weights from the forward's lse. The thread-local
// buffers live in a workspace the caller allocates (so torch's profiler sees them). No torch
// headers: plain C++ compiled by g++ -O3 -march=native -fopenmp and called through ctypes
// (gpa_lib/attention/kernel/cpu.py). float32 (the fast path) and float64 (the tests' precision).
// Layouts: q (BH, Hq, Wq, D), k (BH, Hk, Wk, D), v (BH, Hk, Wk, Dv), selection (BH, K, topk) int64
// block indices row-major over (Hk/p, Wk/p), key_bias (BH, Hk, Wk) or null; out (BH, Hq, Wq, Dv),
// lse (BH, Hq, Wq) in the input dtype: log of the softmax denominators.

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {

struct Shape {
  int batch_heads, hq, wq, hk, wk, head_dim, value_dim, pool, cell, topk;
};

constexpr int kRows = 4;   // queries per register tile
constexpr int kCols = 32;  // keys (or value channels) per register tile

// Cephes expf: 2^n * p(r) with a degree-6 polynomial, about 1 ulp. Branch-free and free of libm
// calls (rounding by the 1.5 * 2^23 trick, the power of two built from its bits), so loops over it
// vectorise.
inline float exp_approx(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float shifted = x * 1.44269504088896341f + 12582912.0f;  // round to nearest by the FPU
  const float n = shifted - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return p * two_n;
}

// 64 bytes of T, lowered by g++ to one AVX-512 register or two AVX2 registers (whatever -march gives).
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64)));
  static constexpr int lanes = 64 / sizeof(T);
};

template <typename T>
inline typename Vec<T>::type load(const T* p) {
  typename Vec<T>::type r;
  std::memcpy(&r, p, sizeof r);
  return r;
}

template <typename T>
inline void store(T* p, typename Vec<T>::type x) {
  std::memcpy(p, &x, sizeof x);
}

// C[R x kCols] (row stride ldc) (+)= alpha * A[R x inner] (row stride lda) * B[inner x kCols] (row stride
// ldb), the accumulators held in vector registers.
template <typename T, int R>
inline void tile_full(const T* a, int lda, const T* b, int ldb, int inner, T* c, int ldc,
                      bool accumulate, T alpha) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes, N = kCols / L;
  V acc[R][N];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < N; ++u) acc[r][u] = accumulate ? load(c + r * ldc + u * L) : V{};
  for (int t = 0; t < inner; ++t) {
    const T* brow = b + static_cast<long>(t) * ldb;
    V bv[N];
    for (int u = 0; u < N; ++u) bv[u] = load(brow + u * L);
    for (int r = 0; r < R; ++r) {
      const T av = alpha * a[r * lda + t];
      for (int u = 0; u < N; ++u) acc[r][u] += av * bv[u];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < N; ++u) store(c + r * ldc + u * L, acc[r][u]);
}

// The same for a column tail narrower than kCols, in plain loops.
template <typename T>
inline void tile_tail(const T* a, int lda, const T* b, int ldb, int inner, int rows, int width,
                      T* c, int ldc, bool accumulate, T alpha) {
  for (int r = 0; r < rows; ++r) {
    T acc[kCols];
    for (int j = 0; j < width; ++j) acc[j] = accumulate ? c[r * ldc + j] : T(0);
    for (int t = 0; t < inner; ++t) {
      const T av = alpha * a[r * lda + t];
      const T* brow = b + static_cast<long>(t) * ldb;
      for (int j = 0; j < width; ++j) acc[j] += av * brow[j];
    }
    for (int j = 0; j < width; ++j) c[r * ldc + j] = acc[j];
  }
}

// C[rows x cols] = alpha * A[rows x inner] * B[inner x cols] (+ C when accumulate), row-major.
template <typename T>
void matmul(const T* a, const T* b, T* c, int rows, int inner, int cols, bool accumulate,
            T alpha = T(1)) {
  const int full = cols - cols % kCols;
  int i = 0;
  for (; i + 2 * kRows <= rows; i += 2 * kRows) {  // 8 x 32 tiles: 16 accumulators in flight
    const T* ai = a + static_cast<long>(i) * inner;
    T* ci = c + static_cast<long>(i) * cols;
    for (int j = 0; j < full; j += kCols)
      tile_full<T, 2 * kRows>(ai, inner, b + j, cols, inner, ci + j, cols, accumulate, alpha);
    if (full < cols)
      tile_tail(ai, inner, b + full, cols, inner, 2 * kRows, cols - full, ci + full, cols, accumulate, alpha);
  }
  for (; i + kRows <= rows; i += kRows) {
    const T* ai = a + static_cast<long>(i) * inner;
    T* ci = c + static_cast<long>(i) * cols;
    for (int j = 0; j < full; j += kCols)
      tile_full<T, kRows>(ai, inner, b + j, cols, inner, ci + j, cols, accumulate, alpha);
    if (full < cols)
      tile_tail(ai, inner, b + full, cols, inner, kRows, cols - full, ci + full, cols, accumulate, alpha);
  }
  for (; i < rows; ++i) {
    const T* ai = a + static_cast<long>(i) * inner;
    T* ci = c + static_cast<long>(i) * cols;
    for (int j = 0; j < full; j += kCols)
      tile_full<T, 1>(ai, inner, b + j, cols, inner, ci + j, cols, accumulate, alpha);
    if (full < cols)
      tile_tail(ai, inner, b + full, cols, inner, 1, cols - full, ci + full, cols, accumulate, alpha);
  }
}

inline float exp_of(float x) { return exp_approx(x); }
inline double exp_of(double x) { return std::exp(x); }  // float64 is the tests' precision

}  // namespace

// Elements of workspace one thread needs.
size_t workspace_size(const Shape& s) {
  const size_t n = static_cast<size_t>(s.cell) * s.cell, m = static_cast<size_t>(s.topk) * s.pool * s.pool;
  return n * s.head_dim + s.head_dim * m + m * s.value_dim + m + n * m + n * s.value_dim + n;
}

template <typename T>
int forward(const Shape* shape, const T* q, const T* k, const T* v, const int64_t* selection,
            const T* key_bias, T scale, T* out, T* lse, T* workspace, int threads) {
  const Shape s = *shape;
  const int D = s.head_dim, Dv = s.value_dim, pool = s.pool, cell = s.cell, topk = s.topk;
  if (D < 1 || Dv < 1 || pool < 1 || cell < 1 || topk < 1 || cell % pool) return 1;
  const int cells_per_row = s.wq / cell;
  const int n_cells = (s.hq / cell) * cells_per_row;
  const int blocks_per_row = s.wk / pool;
  const int n_blocks = (s.hk / pool) * blocks_per_row;
  const int n = cell * cell;            // queries of a cell
  const int pp = pool * pool;           // keys of a block
  const int m = topk * pp;              // keys a query sees
  const long q_grid = static_cast<long>(s.hq) * s.wq;
  const long k_grid = static_cast<long>(s.hk) * s.wk;
  const long tasks = static_cast<long>(s.batch_heads) * n_cells;
  int bad_index = 0;
#pragma omp parallel num_threads(threads) reduction(| : bad_index)
  {
    // This thread's slice of the caller's workspace (workspace_size() elements per thread).
    T* base = workspace + static_cast<size_t>(omp_get_thread_num()) * workspace_size(s);
    T* qc = base;                                     // (c*c, D), scaled queries
    T* kt = qc + static_cast<size_t>(n) * D;          // (D, m): keys transposed
    T* vg = kt + static_cast<size_t>(D) * m;          // (m, Dv)
    T* bias = vg + static_cast<size_t>(m) * Dv;       // (m,)
    T* scores = bias + m;                             // (c*c, m), then unnormalised weights
    T* o = scores + static_cast<size_t>(n) * m;       // (c*c, Dv), unnormalised
    T* inv_total = o + static_cast<size_t>(n) * Dv;   // (c*c,) 1 / softmax denominator
#pragma omp for schedule(static)
    for (long task = 0; task < tasks; ++task) {
      const long bh = task / n_cells;
      const int c = static_cast<int>(task % n_cells);
      const int cy = c / cells_per_row, cx = c % cells_per_row;
      for (int i = 0; i < n; ++i) {
        const long y = cy * cell + i / cell, x = cx * cell + i % cell;
        const T* src = q + (bh * q_grid + y * s.wq + x) * D;
        for (int d = 0; d < D; ++d) qc[static_cast<size_t>(i) * D + d] = src[d] * scale;
      }
      const int64_t* chosen = selection + task * topk;
      for (int t = 0; t < topk; ++t) {
        const int64_t block = chosen[t];
        if (block < 0 || block >= n_blocks) {
          bad_index = 1;
          continue;
        }
        const int by = static_cast<int>(block / blocks_per_row);
        const int bx = static_cast<int>(block % blocks_per_row);
        for (int dy = 0; dy < pool; ++dy)
          for (int dx = 0; dx < pool; ++dx) {
            const int col = t * pp + dy * pool + dx;
            const long token = bh * k_grid + static_cast<long>(by * pool + dy) * s.wk + bx * pool + dx;
            const T* ks = k + token * D;
            for (int d = 0; d < D; ++d) kt[static_cast<size_t>(d) * m + col] = ks[d];
            std::memcpy(&vg[static_cast<size_t>(col) * Dv], v + token * Dv, sizeof(T) * Dv);
            bias[col] = key_bias ? key_bias[token] : T(0);
          }
      }
      for (int i = 0; i < n; ++i)
        std::memcpy(&scores[static_cast<size_t>(i) * m], bias, sizeof(T) * m);
      matmul<T>(qc, kt, scores, n, D, m, /*accumulate=*/true);
      for (int i = 0; i < n; ++i) {
        T* row = &scores[static_cast<size_t>(i) * m];
        T top = row[0];
        int nan = 0;
#pragma omp simd reduction(max : top) reduction(| : nan)
        for (int j = 0; j < m; ++j) {
          top = row[j] > top ? row[j] : top;
          nan |= static_cast<int>(row[j] != row[j]);
        }
        T total = 0;
#pragma omp simd reduction(+ : total)
        for (int j = 0; j < m; ++j) {
          row[j] = exp_of(row[j] - top);
          total += row[j];
        }
        inv_total[i] = nan ? T(NAN) : T(1) / total;  // normalise the output rows, not the m weights
        const long y = cy * cell + i / cell, x = cx * cell + i % cell;
        if (lse) lse[bh * q_grid + y * s.wq + x] = nan ? T(NAN) : top + std::log(total);
      }
      matmul<T>(scores, vg, o, n, m, Dv, /*accumulate=*/false);
      for (int i = 0; i < n; ++i) {
        const long y = cy * cell + i / cell, x = cx * cell + i % cell;
        T* dst = out + (bh * q_grid + y * s.wq + x) * Dv;
        const T* src = &o[static_cast<size_t>(i) * Dv];
        for (int c2 = 0; c2 < Dv; ++c2) dst[c2] = src[c2] * inv_total[i];
      }
    }
  }
  return bad_index ? 2 : 0;
}

// The backward pass of phase 2, one task per (batch*head, query cell), recomputing the weights
// from the forward's lse: P = exp(S - lse), dP = dO V^T, delta_i = sum_j P_ij dP_ij (which is
// dO_i . O_i, so O is not kept), dS = P * (dP - delta), dQ = scale dS K, dK += dS^T (scale Q),
// dV += P^T dO, dbias += sum_i dS_ij. dq (BH, Hq, Wq, D) is written by the cell that owns each
// query; dk (BH, Hk, Wk, D), dv (BH, Hk, Wk, Dv) and dbias (BH, Hk, Wk) (null without a key bias)
// are added to, so the caller zeroes them. Key blocks are shared by cells, so two threads must never
// add to the same key: with ``accum`` null the threads split the batch*heads (each owns its heads'
// gradients), otherwise they split the cells of one head at a time, each adding into its own slice
// of ``accum`` (threads * Hk*Wk*(D+Dv+1) values), summed into the gradients after each head.
size_t backward_workspace_size(const Shape& s) {
  const size_t n = static_cast<size_t>(s.cell) * s.cell, m = static_cast<size_t>(s.topk) * s.pool * s.pool;
  const size_t D = s.head_dim, Dv = s.value_dim;
  return n * D + 2 * m * D + Dv * m + m + n * Dv + 3 * n * m + m * D + m * Dv + m + n * D + n;
}

template <typename T>
struct BackwardTask {
  const Shape s;
  const T *q, *k, *v, *dout, *lse, *key_bias;
  const int64_t* selection;
  T scale;
  T* dq;

  // One (bh, cell): adds into dk_head, dv_head, db_head (one head's Hk*Wk rows); 1 on a bad index.
  int run(long bh, int c, T* dk_head, T* dv_head, T* db_head, T* base) const {
    const int D = s.head_dim, Dv = s.value_dim, pool = s.pool, cell = s.cell, topk = s.topk;
    const int cells_per_row = s.wq / cell, blocks_per_row = s.wk / pool;
    const int n_cells = (s.hq / cell) * cells_per_row, n_blocks = (s.hk / pool) * blocks_per_row;
    const int n = cell * cell, pp = pool * pool, m = topk * pp;
    const long q_grid = static_cast<long>(s.hq) * s.wq, k_grid = static_cast<long>(s.hk) * s.wk;
    T* qc = base;                                   // (n, D) scaled queries
    T* kt = qc + static_cast<size_t>(n) * D;        // (D, m) keys transposed
    T* kg = kt + static_cast<size_t>(D) * m;        // (m, D) keys
    T* vt = kg + static_cast<size_t>(m) * D;        // (Dv, m) values transposed
    T* bias = vt + static_cast<size_t>(Dv) * m;     // (m,)
    T* go = bias + m;                               // (n, Dv) output gradient
    T* p = go + static_cast<size_t>(n) * Dv;        // (n, m) weights
    T* ds = p + static_cast<size_t>(n) * m;         // (n, m) dP, then dS
    T* tr = ds + static_cast<size_t>(n) * m;        // (m, n) P^T, then dS^T
    T* dkl = tr + static_cast<size_t>(m) * n;       // (m, D)
    T* dvl = dkl + static_cast<size_t>(m) * D;      // (m, Dv)
    T* dbl = dvl + static_cast<size_t>(m) * Dv;     // (m,)
    T* dql = dbl + m;                               // (n, D)
    T* row_lse = dql + static_cast<size_t>(n) * D;  // (n,)
    const int cy = c / cells_per_row, cx = c % cells_per_row;
    const long task = bh * n_cells + c;
    for (int i = 0; i < n; ++i) {
      const long y = cy * cell + i / cell, x = cx * cell + i % cell;
      const long at = bh * q_grid + y * s.wq + x;
      const T* src = q + at * D;
      for (int d = 0; d < D; ++d) qc[static_cast<size_t>(i) * D + d] = src[d] * scale;
      std::memcpy(&go[static_cast<size_t>(i) * Dv], dout + at * Dv, sizeof(T) * Dv);
      row_lse[i] = lse[at];
    }
    const int64_t* chosen = selection + task * topk;
    for (int t = 0; t < topk; ++t) {
      const int64_t block = chosen[t];
      if (block < 0 || block >= n_blocks) return 1;
      const int by = static_cast<int>(block / blocks_per_row), bx = static_cast<int>(block % blocks_per_row);
      for (int dy = 0; dy < pool; ++dy)
        for (int dx = 0; dx < pool; ++dx) {
          const int col = t * pp + dy * pool + dx;
          const long token = bh * k_grid + static_cast<long>(by * pool + dy) * s.wk + bx * pool + dx;
          const T* ks = k + token * D;
          const T* vs = v + token * Dv;
          for (int d = 0; d < D; ++d) kt[static_cast<size_t>(d) * m + col] = ks[d];
          std::memcpy(&kg[static_cast<size_t>(col) * D], ks, sizeof(T) * D);
          for (int d = 0; d < Dv; ++d) vt[static_cast<size_t>(d) * m + col] = vs[d];
          bias[col] = key_bias ? key_bias[token] : T(0);
        }
    }
    // P = exp(Q K^T + bias - lse), the forward's scores to the bit.
    for (int i = 0; i < n; ++i) std::memcpy(&p[static_cast<size_t>(i) * m], bias, sizeof(T) * m);
    matmul<T>(qc, kt, p, n, D, m, /*accumulate=*/true);
    for (int i = 0; i < n; ++i) {
      T* row = &p[static_cast<size_t>(i) * m];
      const T shift = row_lse[i];
#pragma omp simd
      for (int j = 0; j < m; ++j) row[j] = exp_of(row[j] - shift);
    }
    matmul<T>(go, vt, ds, n, Dv, m, /*accumulate=*/false);  // dP = dO V^T
    for (int j = 0; j < m; ++j) dbl[j] = T(0);
    for (int i = 0; i < n; ++i) {
      const T* prow = &p[static_cast<size_t>(i) * m];
      T* row = &ds[static_cast<size_t>(i) * m];
      T delta = 0;
#pragma omp simd reduction(+ : delta)
      for (int j = 0; j < m; ++j) delta += prow[j] * row[j];
#pragma omp simd
      for (int j = 0; j < m; ++j) {
        row[j] = prow[j] * (row[j] - delta);
        dbl[j] += row[j];
      }
    }
    matmul<T>(ds, kg, dql, n, m, D, /*accumulate=*/false, scale);  // dQ = scale dS K
    for (int i = 0; i < n; ++i) {
      const long y = cy * cell + i / cell, x = cx * cell + i % cell;
      std::memcpy(dq + (bh * q_grid + y * s.wq + x) * D, &dql[static_cast<size_t>(i) * D], sizeof(T) * D);
    }
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) tr[static_cast<size_t>(j) * n + i] = p[static_cast<size_t>(i) * m + j];
    matmul<T>(tr, go, dvl, m, n, Dv, /*accumulate=*/false);  // dV = P^T dO
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) tr[static_cast<size_t>(j) * n + i] = ds[static_cast<size_t>(i) * m + j];
    matmul<T>(tr, qc, dkl, m, n, D, /*accumulate=*/false);  // dK = dS^T (scale Q)
    for (int t = 0; t < topk; ++t) {
      const int64_t block = chosen[t];
      const int by = static_cast<int>(block / blocks_per_row), bx = static_cast<int>(block % blocks_per_row);
      for (int dy = 0; dy < pool; ++dy)
        for (int dx = 0; dx < pool; ++dx) {
          const int col = t * pp + dy * pool + dx;
          const long token = static_cast<long>(by * pool + dy) * s.wk + bx * pool + dx;  // in the head
          T* gk = dk_head + token * D;
          const T* lk = &dkl[static_cast<size_t>(col) * D];
#pragma omp simd
          for (int d = 0; d < D; ++d) gk[d] += lk[d];
          T* gv = dv_head + token * Dv;
          const T* lv = &dvl[static_cast<size_t>(col) * Dv];
#pragma omp simd
          for (int d = 0; d < Dv; ++d) gv[d] += lv[d];
          if (db_head) db_head[token] += dbl[col];
        }
    }
    return 0;
  }
};

template <typename T>
int backward(const Shape* shape, const T* q, const T* k, const T* v, const int64_t* selection,
             const T* key_bias, T scale, const T* dout, const T* lse, T* dq, T* dk, T* dv, T* dbias,
             T* workspace, T* accum, int threads) {
  const Shape s = *shape;
  if (s.head_dim < 1 || s.value_dim < 1 || s.pool < 1 || s.cell < 1 || s.topk < 1 || s.cell % s.pool)
    return 1;
  const BackwardTask<T> job{s, q, k, v, dout, lse, key_bias, selection, scale, dq};
  const int D = s.head_dim, Dv = s.value_dim;
  const int n_cells = (s.hq / s.cell) * (s.wq / s.cell);
  const long k_grid = static_cast<long>(s.hk) * s.wk;
  const size_t per_thread = backward_workspace_size(s);
  int bad_index = 0;
  if (accum == nullptr) {  // the threads split the heads: each owns its heads' dk, dv, dbias
#pragma omp parallel num_threads(threads) reduction(| : bad_index)
    {
      T* base = workspace + static_cast<size_t>(omp_get_thread_num()) * per_thread;
#pragma omp for schedule(dynamic)
      for (long bh = 0; bh < s.batch_heads; ++bh)
        for (int c = 0; c < n_cells; ++c)
          bad_index |= job.run(bh, c, dk + bh * k_grid * D, dv + bh * k_grid * Dv,
                               dbias ? dbias + bh * k_grid : nullptr, base);
    }
    return bad_index ? 2 : 0;
  }
  const long acc_size = k_grid * (D + Dv + 1);
  for (long bh = 0; bh < s.batch_heads; ++bh) {  // the threads split one head's cells
#pragma omp parallel num_threads(threads) reduction(| : bad_index)
    {
      const int thread = omp_get_thread_num();
      T* base = workspace + static_cast<size_t>(thread) * per_thread;
      T* mine = accum + thread * acc_size;
      std::memset(mine, 0, sizeof(T) * acc_size);
#pragma omp for schedule(static)
      for (int c = 0; c < n_cells; ++c)
        bad_index |= job.run(bh, c, mine, mine + k_grid * D, dbias ? mine + k_grid * (D + Dv) : nullptr, base);
      // (the implicit barrier of the loop above: every thread's slice is complete)
      const long used = dbias ? acc_size : k_grid * (D + Dv);
#pragma omp for schedule(static)
      for (long e = 0; e < used; ++e) {
        T total = 0;
        for (int t = 0; t < threads; ++t) total += accum[t * acc_size + e];
        if (e < k_grid * D) dk[bh * k_grid * D + e] += total;
        else if (e < k_grid * (D + Dv)) dv[bh * k_grid * Dv + (e - k_grid * D)] += total;
        else dbias[bh * k_grid + (e - k_grid * (D + Dv))] += total;
      }
    }
  }
  return bad_index ? 2 : 0;
}

// Phase 1, one task per (batch*head, query cell): the cell's r low-resolution queries against all Nb
// key blocks, S = scale * q_low k_low^T + key_bias in register tiles, a softmax per row, the mean
// over the r rows, and the topk best blocks, ties to the lower block index (NaN counts as the
// largest, as in torch.topk). q_low (BH, K, r, D), k_low_t (BH, D, Nb) (transposed), key_bias
// (BH, Nb) or null; selection (BH, K, topk). Workspace per thread: r*Nb + Nb values, Nb indices.
template <typename T>
int select(const int* sizes, const T* q_low, const T* k_low_t, const T* key_bias, T scale,
           int64_t* selection, T* workspace, int32_t* index_workspace, int threads) {
  const long bh_count = sizes[0];
  const int n_cells = sizes[1], r = sizes[2], D = sizes[3], Nb = sizes[4], topk = sizes[5];
  if (r < 1 || D < 1 || Nb < 1 || topk < 1 || topk > Nb) return 1;
  const long tasks = bh_count * n_cells;
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num();
    T* scores = workspace + static_cast<size_t>(thread) * (static_cast<size_t>(r + 1) * Nb);
    T* mean = scores + static_cast<size_t>(r) * Nb;
    int32_t* order = index_workspace + static_cast<size_t>(thread) * Nb;
#pragma omp for schedule(static)
    for (long task = 0; task < tasks; ++task) {
      const long bh = task / n_cells;
      const T* bias = key_bias ? key_bias + bh * Nb : nullptr;
      for (int i = 0; i < r; ++i)
        for (int j = 0; j < Nb; ++j) scores[static_cast<size_t>(i) * Nb + j] = bias ? bias[j] : T(0);
      const T* qrows = q_low + task * static_cast<long>(r) * D;  // unscaled: matmul applies scale
      matmul<T>(qrows, k_low_t + bh * static_cast<long>(D) * Nb, scores, r, D, Nb,
                /*accumulate=*/true, scale);
      for (int j = 0; j < Nb; ++j) mean[j] = T(0);
      for (int i = 0; i < r; ++i) {
        T* row = scores + static_cast<size_t>(i) * Nb;
        T top = row[0];
        int nan = 0;
#pragma omp simd reduction(max : top) reduction(| : nan)
        for (int j = 0; j < Nb; ++j) {
          top = row[j] > top ? row[j] : top;
          nan |= static_cast<int>(row[j] != row[j]);
        }
        T total = 0;
#pragma omp simd reduction(+ : total)
        for (int j = 0; j < Nb; ++j) {
          row[j] = exp_of(row[j] - top);
          total += row[j];
        }
        const T weight = nan ? T(NAN) : T(1) / (total * r);
#pragma omp simd
        for (int j = 0; j < Nb; ++j) mean[j] += row[j] * weight;
      }
      for (int j = 0; j < Nb; ++j) order[j] = j;
      auto key = [&](int32_t j) {
        const T x = mean[j];
        return x != x ? std::numeric_limits<T>::infinity() : x;
      };
      std::partial_sort(order, order + topk, order + Nb, [&](int32_t a, int32_t b) {
        const T ka = key(a), kb = key(b);
        return ka > kb || (ka == kb && a < b);
      });
      int64_t* out = selection + task * topk;
      for (int t = 0; t < topk; ++t) out[t] = order[t];
    }
  }
  return 0;
}

extern "C" long gpa_cpu_workspace_size(const Shape* shape) {
  return static_cast<long>(workspace_size(*shape));
}

extern "C" int gpa_cpu_forward_f32(const Shape* shape, const float* q, const float* k,
                                   const float* v, const int64_t* selection, const float* key_bias,
                                   double scale, float* out, float* lse, float* workspace,
                                   int threads) {
  return forward<float>(shape, q, k, v, selection, key_bias, static_cast<float>(scale), out, lse,
                        workspace, threads);
}

extern "C" int gpa_cpu_forward_f64(const Shape* shape, const double* q, const double* k,
                                   const double* v, const int64_t* selection,
                                   const double* key_bias, double scale, double* out, double* lse,
                                   double* workspace, int threads) {
  return forward<double>(shape, q, k, v, selection, key_bias, scale, out, lse, workspace, threads);
}

extern "C" int gpa_cpu_select_f32(const int* sizes, const float* q_low, const float* k_low_t,
                                  const float* key_bias, double scale, int64_t* selection,
                                  float* workspace, int32_t* index_workspace, int threads) {
  return select<float>(sizes, q_low, k_low_t, key_bias, static_cast<float>(scale), selection,
                       workspace, index_workspace, threads);
}

extern "C" int gpa_cpu_select_f64(const int* sizes, const double* q_low, const double* k_low_t,
                                  const double* key_bias, double scale, int64_t* selection,
                                  double* workspace, int32_t* index_workspace, int threads) {
  return select<double>(sizes, q_low, k_low_t, key_bias, scale, selection, workspace,
                        index_workspace, threads);
}

extern "C" long gpa_cpu_backward_workspace_size(const Shape* shape) {
  return static_cast<long>(backward_workspace_size(*shape));
}

extern "C" int gpa_cpu_backward_f32(const Shape* shape, const float* q, const float* k,
                                    const float* v, const int64_t* selection,
                                    const float* key_bias, double scale, const float* dout,
                                    const float* lse, float* dq, float* dk, float* dv, float* dbias,
                                    float* workspace, float* accum, int threads) {
  return backward<float>(shape, q, k, v, selection, key_bias, static_cast<float>(scale), dout, lse,
                         dq, dk, dv, dbias, workspace, accum, threads);
}

extern "C" int gpa_cpu_backward_f64(const Shape* shape, const double* q, const double* k,
                                    const double* v, const int64_t* selection,
                                    const double* key_bias, double scale, const double* dout,
                                    const double* lse, double* dq, double* dk, double* dv,
                                    double* dbias, double* workspace, double* accum, int threads) {
  return backward<double>(shape, q, k, v, selection, key_bias, scale, dout, lse, dq, dk, dv, dbias,
                          workspace, accum, threads);
}
