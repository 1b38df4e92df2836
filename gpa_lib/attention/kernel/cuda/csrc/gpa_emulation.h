// Host emulation of the CUDA features the GPA kernels use, so that the kernels run on a CPU (g++
// -std=c++20 -pthread -DGPA_HOST_EMULATION). Used only by tests: it checks the kernels' index
// arithmetic, fragment bookkeeping, masking, barrier placement and cp.async group accounting.
//
// Model: the blocks of a launch run one after another, each by the same blockDim std::threads.
// __syncthreads is a barrier over the block, every warp-collective (shuffle, mma, ldmatrix) a
// barrier over its 32 lanes with an exchange buffer, so a collective called by a diverged warp or a
// barrier skipped by some threads deadlocks; every wait has a timeout that reports it instead.
// Dynamic shared memory starts filled with 0xFF bytes (NaN as fp32, bf16 and fp16), so a read of
// memory nobody wrote shows up as NaN. cp.async copies land either at issue or at the matching
// wait_group (set_cp_async_late): a kernel must give the same result both ways.
// Not modelled: the tensor-core fragment layouts themselves (they follow the PTX ISA tables, the
// same tables the kernels were written from), rounding inside the mma, timing, memory coalescing.
#pragma once
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define GPA_DYNAMIC_SMEM(name) unsigned char* name = gpa_emu::dynamic_smem()

struct float4 {
  float x, y, z, w;
};
struct uint4 {
  uint32_t x, y, z, w;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace gpa_emu {

struct EmulationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reusable barrier with a timeout, so that a missing __syncthreads fails instead of hanging.
class Barrier {
 public:
  explicit Barrier(int n = 0) : n_(n) {}
  void reset(int n) { n_ = n; }
  void wait(const char* what) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t gen = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return generation_ != gen; })) {
      throw EmulationError(std::string("deadlock at ") + what +
                           ": not every thread reached it (barrier in divergent code?)");
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int n_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

struct Warp {
  Barrier barrier{32};
  uint64_t word[32][4];
  const void* ptr[32];
};

struct Block {
  Barrier barrier;
  std::vector<Warp> warps;
  std::vector<unsigned char> smem;
};

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};

struct ThreadState {
  dim3 thread_idx, block_idx;
  Block* block = nullptr;
  std::vector<Copy> pending;
  std::vector<std::vector<Copy>> groups;
};

inline thread_local ThreadState tls;
inline dim3 grid_dim_g, block_dim_g;
inline bool cp_async_late_g = false;
inline size_t smem_bytes_g = 0;

inline void set_cp_async_late(bool late) { cp_async_late_g = late; }

inline unsigned char* dynamic_smem() { return tls.block->smem.data(); }
inline int lane() { return int(tls.thread_idx.x % 32); }
inline Warp& warp() { return tls.block->warps[tls.thread_idx.x / 32]; }

inline void check_aligned(const void* p, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(p) % bytes) throw EmulationError("misaligned access");
}

inline void check_smem(const void* p, size_t bytes) {
  const unsigned char* base = tls.block->smem.data();
  const unsigned char* c = static_cast<const unsigned char*>(p);
  if (c < base || c + bytes > base + tls.block->smem.size())
    throw EmulationError("shared-memory access out of the dynamic allocation");
}

// IEEE conversions with round-to-nearest-even, as the device intrinsics do.
inline uint16_t float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline uint16_t float_to_half(float x) { return std::bit_cast<uint16_t>(static_cast<_Float16>(x)); }
inline float half_to_float(uint16_t h) { return static_cast<float>(std::bit_cast<_Float16>(h)); }

inline void warp_sync(const char* what) { warp().barrier.wait(what); }

inline float shfl_xor(float x, int mask) {
  Warp& w = warp();
  const int l = lane();
  std::memcpy(&w.word[l][0], &x, 4);
  warp_sync("shfl_xor");
  float y;
  std::memcpy(&y, &w.word[l ^ mask][0], 4);
  warp_sync("shfl_xor");
  return y;
}

inline uint16_t lo16(uint32_t x) { return uint16_t(x & 0xffffu); }
inline uint16_t hi16(uint32_t x) { return uint16_t(x >> 16); }

// Warp-wide mma.m16n8k16 from the per-lane fragments (layout in gpa_device.cuh).
template <class ToFloat>
inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1,
                     ToFloat to_float) {
  Warp& w = warp();
  const int l = lane();
  for (int i = 0; i < 4; ++i) w.word[l][i] = a[i];
  w.word[l][0] |= uint64_t(b0) << 32;
  w.word[l][1] |= uint64_t(b1) << 32;
  warp_sync("mma");
  float A[16][16], B[16][8];
  for (int src = 0; src < 32; ++src) {
    const int g = src / 4, t = src % 4;
    uint32_t ra[4];
    for (int i = 0; i < 4; ++i) ra[i] = uint32_t(w.word[src][i]);
    const uint32_t rb0 = uint32_t(w.word[src][0] >> 32), rb1 = uint32_t(w.word[src][1] >> 32);
    const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
    for (int i = 0; i < 4; ++i) {
      A[rows[i]][cols[i]] = to_float(lo16(ra[i]));
      A[rows[i]][cols[i] + 1] = to_float(hi16(ra[i]));
    }
    B[2 * t][g] = to_float(lo16(rb0));
    B[2 * t + 1][g] = to_float(hi16(rb0));
    B[2 * t + 8][g] = to_float(lo16(rb1));
    B[2 * t + 9][g] = to_float(hi16(rb1));
  }
  warp_sync("mma");
  const int g = l / 4, t = l % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float acc = c[i];
    for (int kk = 0; kk < 16; ++kk) acc += A[row][kk] * B[kk][col];
    c[i] = acc;
  }
}

inline void ldmatrix_x4(uint32_t (&r)[4], const void* row_addr, bool trans) {
  check_aligned(row_addr, 16);
  check_smem(row_addr, 16);
  Warp& w = warp();
  const int l = lane();
  w.ptr[l] = row_addr;
  warp_sync("ldmatrix");
  const int g = l / 4, t = l % 4;
  for (int m = 0; m < 4; ++m) {
    uint16_t e0, e1;
    if (!trans) {  // M[g][2t], M[g][2t+1]
      const uint16_t* row = static_cast<const uint16_t*>(w.ptr[8 * m + g]);
      e0 = row[2 * t];
      e1 = row[2 * t + 1];
    } else {  // M[2t][g], M[2t+1][g]
      e0 = static_cast<const uint16_t*>(w.ptr[8 * m + 2 * t])[g];
      e1 = static_cast<const uint16_t*>(w.ptr[8 * m + 2 * t + 1])[g];
    }
    r[m] = uint32_t(e0) | (uint32_t(e1) << 16);
  }
  warp_sync("ldmatrix");
}

inline void do_copy(const Copy& c) {
  if (c.valid)
    std::memcpy(c.dst, c.src, 16);
  else
    std::memset(c.dst, 0, 16);
}

inline void cp_async16(void* dst, const void* src, bool valid) {
  check_aligned(dst, 16);
  check_smem(dst, 16);
  if (valid) check_aligned(src, 16);
  Copy c{dst, src, valid};
  if (cp_async_late_g)
    tls.pending.push_back(c);
  else
    do_copy(c);
}
inline void cp_async_commit() {
  tls.groups.push_back(std::move(tls.pending));
  tls.pending.clear();
}
inline void cp_async_wait(int n) {
  while (int(tls.groups.size()) > n) {
    for (const Copy& c : tls.groups.front()) do_copy(c);
    tls.groups.erase(tls.groups.begin());
  }
}

inline std::string& first_error() {
  static std::string message;
  return message;
}

// Run kernel(args...) over grid x block: the blocks in order, each by the same blockDim threads.
template <class... Params, class... Args>
int launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, Args... args) {
  const int n_threads = int(block.x * block.y * block.z);
  if (block.y != 1 || block.z != 1 || n_threads % 32) return 2;
  grid_dim_g = grid;
  block_dim_g = block;
  smem_bytes_g = smem_bytes;
  std::vector<dim3> blocks;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) blocks.emplace_back(bx, by, bz);
  std::mutex error_mutex;
  std::string error;
  std::atomic<bool> failed{false};
  Block state;
  state.barrier.reset(n_threads);
  state.warps = std::vector<Warp>(n_threads / 32);
  Barrier between(n_threads);  // separates consecutive blocks
  auto worker = [&](int t) {
    tls = ThreadState{};
    tls.thread_idx = dim3(t);
    tls.block = &state;
    for (const dim3& b : blocks) {
      try {
        if (t == 0) state.smem.assign(smem_bytes, 0xFF);  // fresh, NaN-filled shared memory
        between.wait("block start");
        if (!failed) {
          tls.block_idx = b;
          kernel(args...);
          bool unwaited = !tls.pending.empty();
          for (const auto& group : tls.groups) unwaited |= !group.empty();
          if (unwaited) throw EmulationError("kernel ended with cp.async copies never waited for");
          tls.pending.clear();
          tls.groups.clear();
        }
        between.wait("block end");
      } catch (const std::exception& e) {
        failed = true;
        std::lock_guard<std::mutex> lock(error_mutex);
        if (error.empty()) error = e.what();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(n_threads);
  for (int t = 0; t < n_threads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  if (!error.empty()) {
    first_error() = error;
    return 3;
  }
  return 0;
}

}  // namespace gpa_emu

#define threadIdx (gpa_emu::tls.thread_idx)
#define blockIdx (gpa_emu::tls.block_idx)
#define gridDim (gpa_emu::grid_dim_g)
#define blockDim (gpa_emu::block_dim_g)
inline void __syncthreads() { gpa_emu::tls.block->barrier.wait("__syncthreads"); }
