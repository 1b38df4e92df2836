// Device primitives of the GPA kernels: 16-bit element types, tensor-core mma, ldmatrix, cp.async,
// warp shuffles, exp2. Every primitive has a host-emulation twin in gpa_emulation.h (compiled with
// -DGPA_HOST_EMULATION by g++), so that the kernels' index logic can be executed on a CPU.
#pragma once
#include <stdint.h>

#ifdef GPA_HOST_EMULATION
#include "gpa_emulation.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define GPA_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace gpa {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Element-type tags. 16-bit elements travel as uint16_t; pairs as uint32_t (low half = lower index).
struct F16 {};
struct BF16 {};

#ifndef GPA_HOST_EMULATION

__device__ __forceinline__ float gpa_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint16_t from_float(F16, float x) {
  return __half_as_ushort(__float2half_rn(x));
}
__device__ __forceinline__ uint16_t from_float(BF16, float x) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
__device__ __forceinline__ float to_float(F16, uint16_t x) {
  return __half2float(__ushort_as_half(x));
}
__device__ __forceinline__ float to_float(BF16, uint16_t x) {
  return __bfloat162float(__ushort_as_bfloat16(x));
}
__device__ __forceinline__ uint32_t pack2(F16, float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
__device__ __forceinline__ uint32_t pack2(BF16, float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// D(16x8, f32) += A(16x16, row) * B(16x8, col). Fragments per lane (g = lane/4, t = lane%4):
//   a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..]   a[2] = A[g][2t+8..]   a[3] = A[g+8][2t+8..]
//   b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//   c[0..1] = C[g][2t..2t+1]   c[2..3] = C[g+8][2t..2t+1]
__device__ __forceinline__ void mma16816(F16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma16816(BF16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses (16 bytes each) of matrix i.
// Without transpose lane gets M_i[g][2t..2t+1]; with transpose M_i[2t..2t+1][g].
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(row_addr)));
}

__device__ __forceinline__ uint32_t lds32(const uint16_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// 16-byte asynchronous copy global -> shared; zero-fills the destination when !valid.
__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem_dst)),
               "l"(gmem_src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ float shfl_xor(float x, int mask) {
  return __shfl_xor_sync(0xffffffffu, x, mask);
}

#else  // GPA_HOST_EMULATION: the same primitives executed by gpa_emulation.h

inline float gpa_exp2(float x) { return std::exp2(x); }
inline uint16_t from_float(F16, float x) { return gpa_emu::float_to_half(x); }
inline uint16_t from_float(BF16, float x) { return gpa_emu::float_to_bf16(x); }
inline float to_float(F16, uint16_t x) { return gpa_emu::half_to_float(x); }
inline float to_float(BF16, uint16_t x) { return gpa_emu::bf16_to_float(x); }
inline uint32_t pack2(F16 tag, float lo, float hi) {
  return uint32_t(from_float(tag, lo)) | (uint32_t(from_float(tag, hi)) << 16);
}
inline uint32_t pack2(BF16 tag, float lo, float hi) {
  return uint32_t(from_float(tag, lo)) | (uint32_t(from_float(tag, hi)) << 16);
}
inline void mma16816(F16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  gpa_emu::mma16816(c, a, b0, b1, gpa_emu::half_to_float);
}
inline void mma16816(BF16, float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  gpa_emu::mma16816(c, a, b0, b1, gpa_emu::bf16_to_float);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_addr) {
  gpa_emu::ldmatrix_x4(r, row_addr, /*trans=*/true);
}
inline uint32_t lds32(const uint16_t* p) {
  gpa_emu::check_aligned(p, 4);
  uint32_t x;
  std::memcpy(&x, p, 4);
  return x;
}
inline void cp_async16(void* smem_dst, const void* gmem_src, bool valid) {
  gpa_emu::cp_async16(smem_dst, gmem_src, valid);
}
inline void cp_async_commit() { gpa_emu::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
  gpa_emu::cp_async_wait(N);
}
inline float shfl_xor(float x, int mask) { return gpa_emu::shfl_xor(x, mask); }

#endif

// 16-byte and 4-byte moves between 16-bit buffers, and float4 loads and stores. The pointers are
// aligned by construction; the emulation checks it.
#ifndef GPA_HOST_EMULATION
__device__ __forceinline__ void copy16(void* dst, const void* src) {
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}
__device__ __forceinline__ void sts32(uint16_t* p, uint32_t x) {
  *reinterpret_cast<uint32_t*>(p) = x;
}
__device__ __forceinline__ float4 ld_f4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ void st_f4(float* p, float4 x) { *reinterpret_cast<float4*>(p) = x; }
__device__ __forceinline__ void ld_u32x4(const uint16_t* p, uint32_t (&w)[4]) {
  const uint4 x = *reinterpret_cast<const uint4*>(p);
  w[0] = x.x;
  w[1] = x.y;
  w[2] = x.z;
  w[3] = x.w;
}
#else
inline void copy16(void* dst, const void* src) {
  gpa_emu::check_aligned(dst, 16);
  gpa_emu::check_aligned(src, 16);
  std::memcpy(dst, src, 16);
}
inline void sts32(uint16_t* p, uint32_t x) {
  gpa_emu::check_aligned(p, 4);
  std::memcpy(p, &x, 4);
}
inline float4 ld_f4(const float* p) {
  gpa_emu::check_aligned(p, 16);
  float4 x;
  std::memcpy(&x, p, 16);
  return x;
}
inline void st_f4(float* p, float4 x) {
  gpa_emu::check_aligned(p, 16);
  std::memcpy(p, &x, 16);
}
inline void ld_u32x4(const uint16_t* p, uint32_t (&w)[4]) {
  gpa_emu::check_aligned(p, 16);
  std::memcpy(w, p, 16);
}
#endif

__device__ __forceinline__ float dot4(float4 a, float4 b) {
  return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}

}  // namespace gpa
