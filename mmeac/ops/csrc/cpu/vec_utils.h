// Small vectorised helpers shared by the CPU kernels.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace mmeac {
namespace cpu {

using Vec = at::vec::Vectorized<float>;

// Largest element of x[0:n] (n >= 1).
inline float row_max(const float* x, int64_t n) {
  int64_t i = 0;
  float best = -std::numeric_limits<float>::infinity();
  if (n >= Vec::size()) {
    Vec acc = Vec::loadu(x);
    for (i = Vec::size(); i + Vec::size() <= n; i += Vec::size()) {
      acc = at::vec::maximum(acc, Vec::loadu(x + i));
    }
    float lanes[Vec::size()];
    acc.store(lanes);
    best = *std::max_element(lanes, lanes + Vec::size());
  }
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

// x[i] <- exp(x[i] - shift) for i < n; returns the sum of the new values.
inline float exp_shift_sum(float* x, int64_t n, float shift) {
  const Vec vshift(shift);
  Vec acc(0.f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    Vec e = (Vec::loadu(x + i) - vshift).exp_u20();
    e.store(x + i);
    acc = acc + e;
  }
  float lanes[Vec::size()];
  acc.store(lanes);
  float sum = 0.f;
  for (int j = 0; j < Vec::size(); ++j) sum += lanes[j];
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

// x[i] *= a for i < n.
inline void scale_row(float* x, int64_t n, float a) {
  const Vec va(a);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    (Vec::loadu(x + i) * va).store(x + i);
  }
  for (; i < n; ++i) x[i] *= a;
}

}  // namespace cpu
}  // namespace mmeac
