#include "flat/first_below.hpp"

#include "core/cpu_features.hpp"

#if BITGRAPH_HAVE_X86_SIMD
#include <immintrin.h>
#endif

namespace bitgraph {

// Sixteen compares OR-ed together vectorise (one masked compare per 16 on AVX-512); the exact
// position is only searched in the block that holds one.
__attribute__((target_clones("avx512f", "avx2", "default")))
size_t first_below(const uint32_t* d, size_t begin, size_t n, uint32_t limit) {
  size_t j = begin;
  for (; j + 16 <= n; j += 16) {
    uint32_t hit = 0;
    for (size_t i = 0; i < 16; ++i) hit |= uint32_t(d[j + i] < limit);
    if (hit) break;
  }
  for (; j < n; ++j)
    if (d[j] < limit) return j;
  return n;
}

namespace {

uint64_t below_mask_plain(const uint32_t* d, size_t count, uint32_t limit) {
  uint64_t mask = 0;
  for (size_t j = 0; j < count; ++j) mask |= uint64_t(d[j] < limit) << j;
  return mask;
}

#if BITGRAPH_HAVE_X86_SIMD
__attribute__((target("avx2")))
uint64_t below_mask_avx2(const uint32_t* d, size_t count, uint32_t limit) {
  // Unsigned a < b as signed (a ^ sign) < (b ^ sign); one movemask per 8.
  const __m256i sign = _mm256_set1_epi32(int(0x80000000u));
  const __m256i lim = _mm256_xor_si256(_mm256_set1_epi32(int(limit)), sign);
  uint64_t mask = 0;
  size_t j = 0;
  for (; j + 8 <= count; j += 8) {
    const __m256i v = _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + j)), sign);
    const __m256i lt = _mm256_cmpgt_epi32(lim, v);
    mask |= uint64_t(unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(lt)))) << j;
  }
  return j == 64 ? mask : mask | (below_mask_plain(d + j, count - j, limit) << j);
}

__attribute__((target("avx512f")))
uint64_t below_mask_avx512(const uint32_t* d, size_t count, uint32_t limit) {
  const __m512i lim = _mm512_set1_epi32(int(limit));
  uint64_t mask = 0;
  size_t j = 0;
  for (; j + 16 <= count; j += 16)
    mask |= uint64_t(_mm512_cmplt_epu32_mask(_mm512_loadu_si512(d + j), lim)) << j;
  return j == 64 ? mask : mask | (below_mask_plain(d + j, count - j, limit) << j);
}
#endif

using BelowMaskFn = uint64_t (*)(const uint32_t*, size_t, uint32_t);

// The level by the one rule (core/cpu_features.hpp), so BITGRAPH_SIMD caps it in tests too.
BelowMaskFn pick_below_mask() {
  const SimdLevel level = choose_level(kAvx2, kAvx512f);
#if BITGRAPH_HAVE_X86_SIMD
  if (level == SimdLevel::kAvx512) return below_mask_avx512;
  if (level == SimdLevel::kAvx2) return below_mask_avx2;
#endif
  (void)level;
  return below_mask_plain;
}

}  // namespace

// Resolved once (the plain loop does not vectorise into mask compares: it took 5% of an IVF
// search; GCC's multiversioning by target attributes needs every caller to see the versions,
// so the choice is a function pointer).
uint64_t below_mask(const uint32_t* d, size_t count, uint32_t limit) {
  static const BelowMaskFn fn = pick_below_mask();
  return fn(d, count, limit);
}

}  // namespace bitgraph
