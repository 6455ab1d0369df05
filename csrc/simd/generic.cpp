// Portable kernels (no instruction-set flags): the reference every SIMD level must match
// within float rounding, and the fallback on CPUs without AVX2.
#include <cstring>

#include "core/half.hpp"
#include "simd/kernels.hpp"

namespace bitgraph {
namespace simd_generic {
namespace {

constexpr const char* kLevelName = "generic";
// Queries per tile pass: 16 xmm registers (SSE2 baseline); an accumulator takes four.
constexpr size_t kTileQueries = 2;

// Four partial sums let the compiler keep several lanes busy without -ffast-math.
float f32_l2(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  float s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= dim; i += 4)
    for (int j = 0; j < 4; ++j) { float d = q[i + j] - x[i + j]; s[j] += d * d; }
  for (; i < dim; ++i) { float d = q[i] - x[i]; s[0] += d * d; }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

float f32_ip(const float* q, const uint8_t* row, size_t dim) {
  const float* x = reinterpret_cast<const float*>(row);
  float s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= dim; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += q[i + j] * x[i + j];
  for (; i < dim; ++i) s[0] += q[i] * x[i];
  return -((s[0] + s[1]) + (s[2] + s[3]));
}

float f16_l2(const float* q, const uint8_t* row, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    float d = q[i] - half_to_float(h);
    s += d * d;
  }
  return s;
}

float f16_ip(const float* q, const uint8_t* row, size_t dim) {
  float s = 0;
  for (size_t i = 0; i < dim; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    s += q[i] * half_to_float(h);
  }
  return -s;
}

// int8 rows: codes, then float32 scale, then float32 squared norm of the decoded row.
inline void i8_dot_and_norm(const float* q, const uint8_t* row, size_t dim, float* dot,
                            float* qq) {
  const int8_t* c = reinterpret_cast<const int8_t*>(row);
  float d = 0, n = 0;
  for (size_t i = 0; i < dim; ++i) { d += q[i] * float(c[i]); n += q[i] * q[i]; }
  *dot = d;
  *qq = n;
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
  float d = qq - 2.0f * scale * dot + sqnorm;
  return d > 0 ? d : 0.0f;
}

}  // namespace
#include "simd/kernel_loops.inc"
}  // namespace simd_generic
}  // namespace bitgraph
