// AVX-512 (F, BW, VL, DQ) kernels, compiled with those flags only in this translation unit.
// Masked loads handle any dimension without padding the rows.
#include <immintrin.h>

#include <cstring>

#include "simd/kernels.hpp"

namespace bitgraph {
namespace simd_avx512 {
namespace {

constexpr const char* kLevelName = "avx512";
// Queries per tile pass: 32 zmm registers: 8 accumulators, the tile row and spare.
constexpr size_t kTileQueries = 8;

inline __mmask16 mask_for(size_t count) {
  return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
}

float f32_l2(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(x + i + 16));
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
  }
  for (; i < dim; i += 16) {
    __mmask16 m = mask_for(dim - i);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, x + i));
    a0 = _mm512_fmadd_ps(d, d, a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float f32_ip(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i < dim; i += 16) {
    __mmask16 m = mask_for(dim - i);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return -_mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

inline __m512 load_half16(const uint8_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

float f16_l2(const float* q, const uint8_t* row, size_t dim) {
  __m512 acc = _mm512_setzero_ps();
  for (size_t i = 0; i < dim; i += 16) {
    __mmask16 m = mask_for(dim - i);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), load_half16(row + 2 * i, m));
    acc = _mm512_fmadd_ps(d, d, acc);
  }
  return _mm512_reduce_add_ps(acc);
}

float f16_ip(const float* q, const uint8_t* row, size_t dim) {
  __m512 acc = _mm512_setzero_ps();
  for (size_t i = 0; i < dim; i += 16) {
    __mmask16 m = mask_for(dim - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_half16(row + 2 * i, m), acc);
  }
  return -_mm512_reduce_add_ps(acc);
}

inline void i8_dot_and_norm(const float* q, const uint8_t* row, size_t dim, float* dot,
                            float* qq) {
  __m512 d = _mm512_setzero_ps(), n = _mm512_setzero_ps();
  for (size_t i = 0; i < dim; i += 16) {
    __mmask16 m = mask_for(dim - i);
    __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
    __m512 cv = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, row + i)));
    d = _mm512_fmadd_ps(qv, cv, d);
    n = _mm512_fmadd_ps(qv, qv, n);
  }
  *dot = _mm512_reduce_add_ps(d);
  *qq = _mm512_reduce_add_ps(n);
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
}  // namespace simd_avx512
}  // namespace bitgraph
