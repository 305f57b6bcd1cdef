// SwiGLU gate in place, with fc1's bias folded in (float32, CPU).
//
// h is fc1's output computed without bias, [..., 2 * hidden] with contiguous
// rows; bias is fc1's bias [2 * hidden]. One pass per row writes
// silu(u + b_u) * (w + b_w) over u = h[..., :hidden] (w = h[..., hidden:]),
// which the caller then reads as fc2's input. Folding the bias in saves the
// separate pass of adding it to the 2 * hidden wide output.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "vec_utils.h"

namespace mmeac {
namespace cpu {
namespace {

inline float silu_mul(float u, float w) { return u / (1.f + std::exp(-u)) * w; }

void swiglu_(at::Tensor& h, const at::Tensor& bias) {
  TORCH_CHECK(h.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat,
              "mmeac_C::swiglu_: float32 tensors only, got ", h.scalar_type(),
              " and ", bias.scalar_type());
  TORCH_CHECK(h.device().is_cpu() && bias.device().is_cpu(),
              "mmeac_C::swiglu_: CPU tensors only");
  TORCH_CHECK(h.dim() >= 1 && h.size(-1) % 2 == 0,
              "mmeac_C::swiglu_: last dim must be even, got ", h.sizes());
  TORCH_CHECK(h.is_contiguous(), "mmeac_C::swiglu_: h must be contiguous");
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == h.size(-1) &&
                  bias.is_contiguous(),
              "mmeac_C::swiglu_: bias must be [", h.size(-1), "], got ",
              bias.sizes());
  const int64_t width = h.size(-1), hidden = width / 2;
  const int64_t rows = width == 0 ? 0 : h.numel() / width;
  float* hp = h.data_ptr<float>();
  const float* bu = bias.data_ptr<float>();
  const float* bw = bu + hidden;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    const Vec one(1.f);
    for (int64_t r = begin; r < end; ++r) {
      float* u = hp + r * width;
      const float* w = u + hidden;
      int64_t i = 0;
      for (; i + Vec::size() <= hidden; i += Vec::size()) {
        const Vec x = Vec::loadu(u + i) + Vec::loadu(bu + i);
        const Vec y = Vec::loadu(w + i) + Vec::loadu(bw + i);
        (x / (one + x.neg().exp()) * y).store(u + i);
      }
      for (; i < hidden; ++i) u[i] = silu_mul(u[i] + bu[i], w[i] + bw[i]);
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(mmeac_C, CPU, m) { m.impl("swiglu_", &swiglu_); }

}  // namespace cpu
}  // namespace mmeac
