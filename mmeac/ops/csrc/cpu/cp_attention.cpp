// Core-periphery attention forward on the CPU (float32).
//
// Sequence [cores; patches]: C core queries attend to all L = C + N keys,
// N patch queries to the C core keys only. Both groups are computed straight
// into one token-major output ([B, L, heads, dv] in memory, returned as the
// [B, heads, L, dv] view), so no concatenation copy follows:
//
//   cores, one task per (batch, head): S = scale Q_c K^T ([C, L]), row
//     softmax, O_c = S V;
//   patches, one task per (batch, head, block of rows): S = scale Q_blk K_c^T
//     ([rows, C]), row softmax, O_blk = S V_c.
//
// Matrix products use the BLAS sgemm that libtorch_cpu exports (MKL in the
// PyTorch wheels; single-threaded inside at::parallel_for). The softmax keeps
// each row's log-sum-exp for the backward.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "vec_utils.h"

extern "C" void sgemm_(const char* transa, const char* transb, const int* m,
                       const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b,
                       const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace mmeac {
namespace cpu {
namespace {

constexpr int64_t kPatchBlock = 256;  // patch query rows per task

// Column-major BLAS on row-major operands: C[m, n] = alpha op(A) op(B), with
// the row-major operands written as their column-major transposes.
inline void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k,
                 float alpha, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc) {
  const int m_ = static_cast<int>(m), n_ = static_cast<int>(n),
            k_ = static_cast<int>(k), lda_ = static_cast<int>(lda),
            ldb_ = static_cast<int>(ldb), ldc_ = static_cast<int>(ldc);
  const float beta = 0.f;
  sgemm_(&ta, &tb, &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta, c,
         &ldc_);
}

// Row-major out[rows, cols] (row stride ldo) = q[rows, d] k[cols, d]^T scale.
inline void scores(const float* q, int64_t ldq, const float* k, int64_t ldk,
                   int64_t rows, int64_t cols, int64_t d, float scale,
                   float* out, int64_t ldo) {
  gemm('T', 'N', cols, rows, d, scale, k, ldk, q, ldq, out, ldo);
}

// Row-major out[rows, dv] (row stride ldo) = p[rows, cols] v[cols, dv].
inline void weighted_sum(const float* p, int64_t ldp, const float* v,
                         int64_t ldv, int64_t rows, int64_t cols, int64_t dv,
                         float* out, int64_t ldo) {
  gemm('N', 'N', dv, rows, cols, 1.f, v, ldv, p, ldp, out, ldo);
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 4, "mmeac_C::cp_attention_fwd: ", name,
              " must be 4-D [batch, heads, tokens, dim], got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat,
              "mmeac_C::cp_attention_fwd: ", name, " must be float32, got ",
              t.scalar_type());
  TORCH_CHECK(t.device().is_cpu(), "mmeac_C::cp_attention_fwd: ", name,
              " must be a CPU tensor");
  TORCH_CHECK(t.stride(3) == 1 || t.size(3) == 1,
              "mmeac_C::cp_attention_fwd: ", name,
              " needs a contiguous last dim, got strides ", t.strides());
  for (int i = 0; i < 3; ++i) {
    TORCH_CHECK(t.stride(i) < (int64_t{1} << 31),
                "mmeac_C::cp_attention_fwd: ", name, " has strides ",
                t.strides(), "; BLAS needs them below 2^31");
  }
}

std::tuple<at::Tensor, at::Tensor> cp_attention_fwd(const at::Tensor& q,
                                                    const at::Tensor& k,
                                                    const at::Tensor& v,
                                                    int64_t num_cores,
                                                    double scale_) {
  check(q, "q");
  check(k, "k");
  check(v, "v");
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), d = q.size(3);
  const int64_t dv = v.size(3), C = num_cores, N = L - C;
  TORCH_CHECK(k.sizes() == q.sizes() && v.size(0) == B && v.size(1) == H &&
                  v.size(2) == L,
              "mmeac_C::cp_attention_fwd: shapes disagree: q ", q.sizes(),
              ", k ", k.sizes(), ", v ", v.sizes());
  TORCH_CHECK(C >= 1 && C <= L, "mmeac_C::cp_attention_fwd: num_cores ", C,
              " not in [1, ", L, "]");
  TORCH_CHECK(L < (int64_t{1} << 31), "mmeac_C::cp_attention_fwd: ", L,
              " tokens; BLAS needs fewer than 2^31");
  const float scale = static_cast<float>(scale_);

  // token-major storage, returned as [B, H, L, ...] views
  at::Tensor out = at::empty({B, L, H, dv}, q.options());
  at::Tensor lse = at::empty({B, L, H}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* lp = lse.data_ptr<float>();
  const int64_t qb = q.stride(0), qh = q.stride(1), qt = q.stride(2);
  const int64_t kb = k.stride(0), kh = k.stride(1), kt = k.stride(2);
  const int64_t vb = v.stride(0), vh = v.stride(1), vt = v.stride(2);
  const int64_t ot = H * dv, ob = L * ot, lt = H, lb = L * H;

  // cores: every key
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> s(static_cast<size_t>(C * L));
    std::vector<float> inv(static_cast<size_t>(C));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / H, h = task % H;
      const float* qc = qp + b * qb + h * qh;
      const float* kk = kp + b * kb + h * kh;
      const float* vv = vp + b * vb + h * vh;
      float* oc = op + b * ob + h * dv;
      float* lc = lp + b * lb + h;
      scores(qc, qt, kk, kt, C, L, d, scale, s.data(), L);
      for (int64_t r = 0; r < C; ++r) {
        float* row = s.data() + r * L;
        const float mx = row_max(row, L);
        const float sum = exp_shift_sum(row, L, mx);
        inv[r] = 1.f / sum;
        lc[r * lt] = mx + std::log(sum);
      }
      weighted_sum(s.data(), L, vv, vt, C, L, dv, oc, ot);
      for (int64_t r = 0; r < C; ++r) scale_row(oc + r * ot, dv, inv[r]);
    }
  });

  // patches: the core keys only
  if (N > 0) {
    const int64_t blocks = (N + kPatchBlock - 1) / kPatchBlock;
    at::parallel_for(0, B * H * blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> s(static_cast<size_t>(kPatchBlock * C));
      for (int64_t task = begin; task < end; ++task) {
        const int64_t bh = task / blocks, blk = task % blocks;
        const int64_t b = bh / H, h = bh % H;
        const int64_t r0 = C + blk * kPatchBlock;
        const int64_t rows = std::min(kPatchBlock, L - r0);
        const float* qq = qp + b * qb + h * qh + r0 * qt;
        const float* kc = kp + b * kb + h * kh;
        const float* vc = vp + b * vb + h * vh;
        float* oo = op + b * ob + r0 * ot + h * dv;
        float* ll = lp + b * lb + r0 * lt + h;
        scores(qq, qt, kc, kt, rows, C, d, scale, s.data(), C);
        for (int64_t r = 0; r < rows; ++r) {
          float* row = s.data() + r * C;
          const float mx = row_max(row, C);
          const float sum = exp_shift_sum(row, C, mx);
          scale_row(row, C, 1.f / sum);
          ll[r * lt] = mx + std::log(sum);
        }
        weighted_sum(s.data(), C, vc, vt, rows, C, dv, oo, ot);
      }
    });
  }
  return {out.transpose(1, 2), lse.transpose(1, 2)};
}

}  // namespace

TORCH_LIBRARY_IMPL(mmeac_C, CPU, m) {
  m.impl("cp_attention_fwd", &cp_attention_fwd);
}

}  // namespace cpu
}  // namespace mmeac
