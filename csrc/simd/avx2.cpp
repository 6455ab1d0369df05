// AVX2 + FMA + F16C kernels (compiled with those flags only in this translation unit).
#include <immintrin.h>

#include <cstring>

#include "simd/kernels.hpp"

namespace bitgraph {
namespace simd_avx2 {
namespace {

constexpr const char* kLevelName = "avx2";
// Queries per tile pass: 16 ymm registers; a 16-lane accumulator takes two.
constexpr size_t kTileQueries = 4;

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// Lane mask for the last dim % 8 values, so rows need no padding.
inline __m256i tail_mask(size_t rem) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - rem));
}

float f32_l2(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(x + i + 8));
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
  }
  for (; i + 8 <= dim; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
    a0 = _mm256_fmadd_ps(d, d, a0);
  }
  if (i < dim) {
    __m256i m = tail_mask(dim - i);
    __m256 d = _mm256_sub_ps(_mm256_maskload_ps(q + i, m), _mm256_maskload_ps(x + i, m));
    a1 = _mm256_fmadd_ps(d, d, a1);
  }
  return hsum(_mm256_add_ps(a0, a1));
}

float f32_ip(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(x + i + 8), a1);
  }
  for (; i + 8 <= dim; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i), a0);
  if (i < dim) {
    __m256i m = tail_mask(dim - i);
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), _mm256_maskload_ps(x + i, m), a1);
  }
  return -hsum(_mm256_add_ps(a0, a1));
}

// Loads 8 halves (or fewer, zero-filled) as floats.
inline __m256 load_half8(const uint8_t* p, size_t count) {
  if (count >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, p, 2 * count);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}

inline __m256 load_f8(const float* p, size_t count) {
  if (count >= 8) return _mm256_loadu_ps(p);
  return _mm256_maskload_ps(p, tail_mask(count));
}

float f16_l2(const float* q, const uint8_t* row, size_t dim) {
  __m256 acc = _mm256_setzero_ps();
  for (size_t i = 0; i < dim; i += 8) {
    size_t c = dim - i;
    __m256 d = _mm256_sub_ps(load_f8(q + i, c), load_half8(row + 2 * i, c));
    acc = _mm256_fmadd_ps(d, d, acc);
  }
  return hsum(acc);
}

float f16_ip(const float* q, const uint8_t* row, size_t dim) {
  __m256 acc = _mm256_setzero_ps();
  for (size_t i = 0; i < dim; i += 8) {
    size_t c = dim - i;
    acc = _mm256_fmadd_ps(load_f8(q + i, c), load_half8(row + 2 * i, c), acc);
  }
  return -hsum(acc);
}

inline __m256 load_i8x8(const uint8_t* p, size_t count) {
  int64_t v = 0;
  std::memcpy(&v, p, count >= 8 ? 8 : count);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)));
}

inline void i8_dot_and_norm(const float* q, const uint8_t* row, size_t dim, float* dot,
                            float* qq) {
  __m256 d = _mm256_setzero_ps(), n = _mm256_setzero_ps();
  for (size_t i = 0; i < dim; i += 8) {
    size_t c = dim - i;
    __m256 qv = load_f8(q + i, c);
    d = _mm256_fmadd_ps(qv, load_i8x8(row + i, c), d);
    n = _mm256_fmadd_ps(qv, qv, n);
  }
  *dot = hsum(d);
  *qq = hsum(n);
}

float i8_ip(const float* q, const uint8_t* row, size_t dim) {
  float dot, qq, scale;
  i8_dot_and_norm(q, row, dim, &dot, &qq);
  std::memcpy(&scale, row + dim, 4);
  return -(scale * dot);
}

float i8_l2(const float* q, const uint8_t* row, size_t dim) {
  float dot, qq, scale, sqnorm;
  i8_dot_and_norm(q, row, dim, &dot, &qq);
  std::memcpy(&scale, row + dim, 4);
  std::memcpy(&sqnorm, row + dim + 4, 4);
  float r = qq - 2.0f * scale * dot + sqnorm;
  return r > 0 ? r : 0.0f;
}

}  // namespace
#include "simd/kernel_loops.inc"
}  // namespace simd_avx2
}  // namespace bitgraph
