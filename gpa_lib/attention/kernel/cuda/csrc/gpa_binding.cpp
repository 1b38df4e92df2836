// Thin torch binding of the GPA kernels (phase 2, and phase 1's selection): checks, allocation,
// stream, error text. The kernels are in gpa_phase2.cu behind the raw-pointer interface of
// gpa_phase2.h.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <cstdint>
#include <vector>

#include "gpa_phase2.h"

namespace {

int dtype_code(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return GPA_DTYPE_F32;
    case at::kHalf:
      return GPA_DTYPE_F16;
    case at::kBFloat16:
      return GPA_DTYPE_BF16;
    default:
      return -1;
  }
}

// Contiguous, with a 16-byte aligned start: the kernels move rows with 16-byte cp.async and float4
// accesses. A contiguous view can start at an odd offset inside its storage; such views are copied.
at::Tensor dense16(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  if (reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 != 0) c = c.clone(at::MemoryFormat::Contiguous);
  return c;
}

int checked_int(int64_t value, const char* name) {
  TORCH_CHECK(value > 0 && value < (int64_t(1) << 31), "gpa_phase2: ", name, "=", value,
              " must be a positive 32-bit integer");
  return static_cast<int>(value);
}

// Checks q (B,h,Hq,Wq,D), k and v (B,h,Hk,Wk,D), selection (B,h,Hq/cell,Wq/cell,topk) int64 and
// key_bias (B,h,Hk,Wk) float32; returns the kernel's shape description.
GpaShape check_and_describe(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& selection, const c10::optional<at::Tensor>& key_bias,
                            int64_t pool, int64_t cell) {
  TORCH_CHECK(q.is_cuda() && k.is_cuda() && v.is_cuda() && selection.is_cuda(),
              "gpa_phase2: q, k, v and selection must be CUDA tensors");
  TORCH_CHECK(q.device() == k.device() && q.device() == v.device() &&
                  q.device() == selection.device(),
              "gpa_phase2: q, k, v and selection must be on one device");
  TORCH_CHECK(q.dim() == 5 && k.dim() == 5 && v.dim() == 5,
              "gpa_phase2: q, k, v must be (B, h, H, W, D), got dims ", q.dim(), ", ", k.dim(), ", ",
              v.dim());
  TORCH_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
              "gpa_phase2: q, k and v must share a dtype");
  const int dtype = dtype_code(q.scalar_type());
  const int64_t D = q.size(4);
  TORCH_CHECK(k.size(4) == D && v.size(4) == D, "gpa_phase2: the kernel needs one head dim for q, k "
              "and v, got D=", D, ", k D=", k.size(4), ", Dv=", v.size(4));
  TORCH_CHECK(dtype >= 0 && gpa_phase2_supported(dtype, static_cast<int>(D)),
              "gpa_phase2: no kernel for dtype ", q.scalar_type(), " and D=", D,
              " (float32, float16, bfloat16 with D in {16, 32, 64, 128})");
  TORCH_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                  v.size(1) == q.size(1),
              "gpa_phase2: batch and heads of q, k, v differ");
  TORCH_CHECK(k.size(2) == v.size(2) && k.size(3) == v.size(3), "gpa_phase2: k and v grids differ");
  TORCH_CHECK(pool >= 1 && cell >= 1 && cell % pool == 0 && q.size(2) % cell == 0 &&
                  q.size(3) % cell == 0 && k.size(2) % pool == 0 && k.size(3) % pool == 0,
              "gpa_phase2: need cell % pool == 0, Hq, Wq multiples of cell, Hk, Wk multiples of pool; "
              "got pool=", pool, ", cell=", cell, ", q grid ", q.size(2), "x", q.size(3),
              ", k grid ", k.size(2), "x", k.size(3));
  TORCH_CHECK(selection.scalar_type() == at::kLong && selection.dim() == 5 &&
                  selection.size(0) == q.size(0) && selection.size(1) == q.size(1) &&
                  selection.size(2) == q.size(2) / cell && selection.size(3) == q.size(3) / cell,
              "gpa_phase2: selection must be int64 (B, h, Hq/cell, Wq/cell, topk), got ",
              selection.sizes(), " ", selection.scalar_type());
  if (key_bias.has_value()) {
    const at::Tensor& bias = *key_bias;
    TORCH_CHECK(bias.is_cuda() && bias.device() == q.device() && bias.scalar_type() == at::kFloat &&
                    bias.dim() == 4 && bias.size(0) == k.size(0) && bias.size(1) == k.size(1) &&
                    bias.size(2) == k.size(2) && bias.size(3) == k.size(3),
                "gpa_phase2: key_bias must be float32 (B, h, Hk, Wk) on q's device, got ",
                bias.sizes(), " ", bias.scalar_type());
  }
  GpaShape shape;
  shape.batch_heads = checked_int(q.size(0) * q.size(1), "B*h");
  shape.hq = checked_int(q.size(2), "Hq");
  shape.wq = checked_int(q.size(3), "Wq");
  shape.hk = checked_int(k.size(2), "Hk");
  shape.wk = checked_int(k.size(3), "Wk");
  shape.head_dim = static_cast<int>(D);
  shape.pool = checked_int(pool, "pool");
  shape.cell = checked_int(cell, "cell");
  shape.topk = checked_int(selection.size(4), "topk");
  return shape;
}

std::vector<at::Tensor> phase2_fwd(at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor selection,
                                   c10::optional<at::Tensor> key_bias, int64_t pool, int64_t cell,
                                   double scale) {
  const GpaShape shape = check_and_describe(q, k, v, selection, key_bias, pool, cell);
  const c10::cuda::CUDAGuard guard(q.device());
  q = dense16(q);
  k = dense16(k);
  v = dense16(v);
  selection = selection.contiguous();
  at::Tensor bias;
  if (key_bias.has_value()) bias = key_bias->contiguous();
  at::Tensor out = at::empty(q.sizes(), q.options());
  at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2), q.size(3)}, q.options().dtype(at::kFloat));
  const int err = gpa_phase2_forward(
      &shape, dtype_code(q.scalar_type()), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      selection.data_ptr<int64_t>(), bias.defined() ? bias.data_ptr<float>() : nullptr,
      static_cast<float>(scale), out.data_ptr(), lse.data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == 0, "gpa_phase2_forward failed: ", gpa_error_string(err));
  return {out, lse};
}

std::vector<at::Tensor> phase2_bwd(at::Tensor dout, at::Tensor q, at::Tensor k, at::Tensor v,
                                   at::Tensor out, at::Tensor lse, at::Tensor selection,
                                   c10::optional<at::Tensor> key_bias, at::Tensor csr_offsets,
                                   at::Tensor csr_cells, int64_t pool, int64_t cell, double scale) {
  const GpaShape shape = check_and_describe(q, k, v, selection, key_bias, pool, cell);
  TORCH_CHECK(dout.sizes() == q.sizes() && out.sizes() == q.sizes() &&
                  dout.scalar_type() == q.scalar_type() && out.scalar_type() == q.scalar_type(),
              "gpa_phase2_bwd: dout and out must have q's shape and dtype");
  TORCH_CHECK(lse.scalar_type() == at::kFloat && lse.numel() == q.numel() / q.size(4),
              "gpa_phase2_bwd: lse must be float32 (B, h, Hq, Wq)");
  const int64_t n_blocks = (k.size(2) / pool) * (k.size(3) / pool);
  TORCH_CHECK(csr_offsets.scalar_type() == at::kInt && csr_cells.scalar_type() == at::kInt &&
                  csr_offsets.numel() == q.size(0) * q.size(1) * n_blocks + 1 &&
                  csr_cells.numel() == selection.numel(),
              "gpa_phase2_bwd: csr_offsets must be int32 (B*h*n_key_blocks + 1) and csr_cells int32 "
              "with one entry per selection entry");
  const c10::cuda::CUDAGuard guard(q.device());
  dout = dense16(dout);
  q = dense16(q);
  k = dense16(k);
  v = dense16(v);
  out = dense16(out);
  lse = lse.contiguous();
  selection = selection.contiguous();
  csr_offsets = csr_offsets.contiguous();
  csr_cells = csr_cells.contiguous();
  at::Tensor bias;
  if (key_bias.has_value()) bias = key_bias->contiguous();
  at::Tensor delta = at::empty_like(lse);
  at::Tensor dq = at::empty_like(q);
  at::Tensor dk = at::empty_like(k);
  at::Tensor dv = at::empty_like(v);
  at::Tensor dbias = bias.defined() ? at::empty_like(bias) : at::empty({0}, lse.options());
  const int err = gpa_phase2_backward(
      &shape, dtype_code(q.scalar_type()), q.data_ptr(), k.data_ptr(), v.data_ptr(),
      out.data_ptr(), dout.data_ptr(), lse.data_ptr<float>(), selection.data_ptr<int64_t>(),
      bias.defined() ? bias.data_ptr<float>() : nullptr, static_cast<float>(scale),
      csr_offsets.data_ptr<int32_t>(), csr_cells.data_ptr<int32_t>(), delta.data_ptr<float>(),
      dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), bias.defined() ? dbias.data_ptr<float>() : nullptr,
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == 0, "gpa_phase2_backward failed: ", gpa_error_string(err));
  return {dq, dk, dv, dbias};
}

// Phase 1 from the pooled grids split into bf16 hi + lo: q (B, h, K, r, D), k (B, h, Nb, D),
// key_bias (B, h, Nb) float32; q_lo and k_lo both given or both absent. Returns (B, h, K, topk) int64.
at::Tensor phase1_select(at::Tensor q_hi, c10::optional<at::Tensor> q_lo, at::Tensor k_hi,
                         c10::optional<at::Tensor> k_lo, c10::optional<at::Tensor> key_bias,
                         double scale, int64_t topk) {
  TORCH_CHECK(q_hi.is_cuda() && k_hi.is_cuda() && q_hi.device() == k_hi.device(),
              "gpa_phase1: q_hi and k_hi must be CUDA tensors on one device");
  TORCH_CHECK(q_hi.dim() == 5 && k_hi.dim() == 4,
              "gpa_phase1: q_hi must be (B, h, K, r, D) and k_hi (B, h, Nb, D), got dims ",
              q_hi.dim(), " and ", k_hi.dim());
  TORCH_CHECK(q_hi.scalar_type() == at::kBFloat16 && k_hi.scalar_type() == at::kBFloat16,
              "gpa_phase1: q_hi and k_hi must be bfloat16");
  TORCH_CHECK(q_lo.has_value() == k_lo.has_value(),
              "gpa_phase1: give both q_lo and k_lo or neither");
  const int64_t B = q_hi.size(0), h = q_hi.size(1), K = q_hi.size(2), r = q_hi.size(3),
                D = q_hi.size(4), Nb = k_hi.size(2);
  TORCH_CHECK(k_hi.size(0) == B && k_hi.size(1) == h && k_hi.size(3) == D,
              "gpa_phase1: k_hi must be (B, h, Nb, D) with q_hi's B, h and D, got ", k_hi.sizes());
  if (q_lo.has_value())
    TORCH_CHECK(q_lo->sizes() == q_hi.sizes() && k_lo->sizes() == k_hi.sizes() &&
                    q_lo->scalar_type() == at::kBFloat16 && k_lo->scalar_type() == at::kBFloat16 &&
                    q_lo->device() == q_hi.device() && k_lo->device() == k_hi.device(),
                "gpa_phase1: q_lo and k_lo must match q_hi and k_hi");
  GpaPhase1Shape shape{};
  shape.batch_heads = checked_int(B * h, "batch*heads");
  shape.n_cells = checked_int(K, "cells");
  shape.rows_per_cell = checked_int(r, "rows per cell");
  shape.n_key_blocks = checked_int(Nb, "key blocks");
  shape.head_dim = checked_int(D, "head_dim");
  shape.topk = checked_int(topk, "topk");
  TORCH_CHECK(gpa_phase1_supported(shape.head_dim, shape.rows_per_cell, shape.topk),
              "gpa_phase1: unsupported D=", D, ", rows per cell=", r, ", topk=", topk);
  at::Tensor bias;
  if (key_bias.has_value()) {
    TORCH_CHECK(key_bias->scalar_type() == at::kFloat && key_bias->numel() == B * h * Nb &&
                    key_bias->device() == q_hi.device(),
                "gpa_phase1: key_bias must be float32 (B, h, Nb) on q_hi's device");
    bias = key_bias->contiguous();
  }
  const c10::cuda::CUDAGuard guard(q_hi.device());
  q_hi = dense16(q_hi);
  k_hi = dense16(k_hi);
  at::Tensor ql, kl;
  if (q_lo.has_value()) {
    ql = dense16(*q_lo);
    kl = dense16(*k_lo);
  }
  at::Tensor selection = at::empty({B, h, K, topk}, q_hi.options().dtype(at::kLong));
  const int err = gpa_phase1_select(
      &shape, q_hi.data_ptr(), ql.defined() ? ql.data_ptr() : nullptr, k_hi.data_ptr(),
      kl.defined() ? kl.data_ptr() : nullptr, bias.defined() ? bias.data_ptr<float>() : nullptr,
      static_cast<float>(scale), selection.data_ptr<int64_t>(),
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == 0, "gpa_phase1_select failed: ", gpa_error_string(err));
  return selection;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Fused GPA: phase 1 (block selection) and phase 2 (gather of selected key blocks, online "
            "softmax) forward and backward";
  m.def("phase1_select", &phase1_select, "GPA phase 1: (B, h, K, topk) key blocks");
  m.def("phase2_fwd", &phase2_fwd, "GPA phase 2 forward: (out, lse)");
  m.def("phase2_bwd", &phase2_bwd, "GPA phase 2 backward: (dq, dk, dv, dbias)");
}
