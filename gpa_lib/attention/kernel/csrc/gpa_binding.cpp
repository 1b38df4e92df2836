// Thin torch binding of the GPA phase-2 kernels: checks, allocation, stream, error text. The
// kernels themselves are in gpa_phase2.cu behind the raw-pointer interface of gpa_phase2.h.
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

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Fused GPA phase 2 (gather of selected key blocks, online softmax) forward and backward";
  m.def("phase2_fwd", &phase2_fwd, "GPA phase 2 forward: (out, lse)");
  m.def("phase2_bwd", &phase2_bwd, "GPA phase 2 backward: (dq, dk, dv, dbias)");
}
