// AVX2 fast-scan: one 32-byte load holds two nibble positions of a 32-document block; each
// 128-bit lane's pshufb looks up one position's 16-entry table for 16 documents.
// Compiled with -mavx2 only; dispatch (fastscan.cpp) calls it only where the CPU has AVX2.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "binary/fastscan.hpp"
#include "binary/fastscan_detail.hpp"

namespace bitgraph::fastscan_detail {

namespace {

// Queries per pass: 4 uint16 accumulators each, and AVX2 has 16 ymm registers.
constexpr int kQueries = 2;

// uint16 lanes in `v` hold pairs of byte sums (even document in the low byte). acc_even adds
// the whole word and acc_odd the high byte; acc_even - (acc_odd << 8) is then the even sum
// (mod 2^16, exact while it fits), one op cheaper than masking the low byte each time.
inline void add_bytes(__m256i v, __m256i& acc_even, __m256i& acc_odd) {
  acc_even = _mm256_add_epi16(acc_even, v);
  acc_odd = _mm256_add_epi16(acc_odd, _mm256_srli_epi16(v, 8));
}

// Lane 0 and lane 1 hold the same 8 documents for different positions: add them as uint32.
inline void widen_into(__m256i v, uint32_t* tot) {
  __m256i w = _mm256_add_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)),
                               _mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)));
  __m256i* t = reinterpret_cast<__m256i*>(tot);
  _mm256_store_si256(t, _mm256_add_epi32(_mm256_load_si256(t), w));
}

// One step: U consecutive pairs of positions. The nibbles are split once for all queries;
// then each query's U lookups are summed as bytes (U * max_entry <= 255, no overflow) and
// added to its accumulators right away, so only one query's sums are live at a time (with
// every query's sums live the 4-query AVX-512 / 2-query AVX2 loops spilled to the stack).
template <int NQ, int U>
inline void step(const uint8_t* blk, const uint8_t* const* luts, size_t pair,
                 __m256i (*acc)[4]) {
  const __m256i m4 = _mm256_set1_epi8(15);
  __m256i lo[U], hi[U];
  for (int u = 0; u < U; ++u) {
    const size_t off = 32 * (pair + u);
    __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + off));
    lo[u] = _mm256_and_si256(d, m4);
    hi[u] = _mm256_and_si256(_mm256_srli_epi16(d, 4), m4);
  }
  for (int q = 0; q < NQ; ++q) {
    __m256i slo = _mm256_setzero_si256(), shi = slo;
    for (int u = 0; u < U; ++u) {
      const uint8_t* row = luts[q] + 32 * (pair + u);
      __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row));
      slo = _mm256_add_epi8(slo, _mm256_shuffle_epi8(t, lo[u]));
      shi = _mm256_add_epi8(shi, _mm256_shuffle_epi8(t, hi[u]));
    }
    add_bytes(slo, acc[q][0], acc[q][1]);
    add_bytes(shi, acc[q][2], acc[q][3]);
  }
}

// Short codes (npos * max_entry <= 65535): the whole sums fit uint16 lanes, so the two lanes
// fold in 16 bits and go out once, with no uint32 widening (see fastscan_avx512.cpp).
inline __m128i fold_lanes(__m256i v) {
  return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

inline void store_docs(__m128i even, __m128i odd, uint32_t* out) {
  __m256i* dst = reinterpret_cast<__m256i*>(out);
  _mm256_storeu_si256(dst, _mm256_cvtepu16_epi32(_mm_unpacklo_epi16(even, odd)));
  _mm256_storeu_si256(dst + 1, _mm256_cvtepu16_epi32(_mm_unpackhi_epi16(even, odd)));
}

template <int NQ, int U>
void scan_block_short(const uint8_t* blk, size_t npos, const uint8_t* const* luts,
                      uint32_t* const* out) {
  const size_t pairs = npos / 2;
  __m256i acc[NQ][4];
  for (int q = 0; q < NQ; ++q)
    for (int a = 0; a < 4; ++a) acc[q][a] = _mm256_setzero_si256();
  size_t p = 0;
  for (; p + U <= pairs; p += U) step<NQ, U>(blk, luts, p, acc);
  for (; p < pairs; ++p) step<NQ, 1>(blk, luts, p, acc);
  for (int q = 0; q < NQ; ++q)
    for (int h = 0; h < 2; ++h) {
      const __m256i odd = acc[q][2 * h + 1];
      const __m256i even = _mm256_sub_epi16(acc[q][2 * h], _mm256_slli_epi16(odd, 8));
      store_docs(fold_lanes(even), fold_lanes(odd), out[q] + 16 * h);
    }
}

template <int NQ, int U>
void scan_block(const uint8_t* blk, size_t npos, const uint8_t* const* luts, unsigned max_entry,
                uint32_t* const* out) {
  alignas(32) uint32_t tot[NQ][4][8] = {};
  const size_t pairs = npos / 2;
  // Each uint16 lane gains at most U * max_entry per step of U pairs.
  const size_t chunk = size_t(65535 / (U * max_entry)) * U;
  for (size_t c0 = 0; c0 < pairs; c0 += chunk) {
    const size_t c1 = std::min(pairs, c0 + chunk);
    __m256i acc[NQ][4];
    for (int q = 0; q < NQ; ++q)
      for (int a = 0; a < 4; ++a) acc[q][a] = _mm256_setzero_si256();
    size_t p = c0;
    for (; p + U <= c1; p += U) step<NQ, U>(blk, luts, p, acc);
    for (; p < c1; ++p) step<NQ, 1>(blk, luts, p, acc);
    for (int q = 0; q < NQ; ++q)
      for (int a = 0; a < 4; a += 2) {
        widen_into(_mm256_sub_epi16(acc[q][a], _mm256_slli_epi16(acc[q][a + 1], 8)), tot[q][a]);
        widen_into(acc[q][a + 1], tot[q][a + 1]);
      }
  }
  // Interleave even/odd sums back into document order.
  for (int q = 0; q < NQ; ++q)
    for (int h = 0; h < 2; ++h) {
      __m256i e = _mm256_load_si256(reinterpret_cast<const __m256i*>(tot[q][2 * h]));
      __m256i o = _mm256_load_si256(reinterpret_cast<const __m256i*>(tot[q][2 * h + 1]));
      __m256i a = _mm256_unpacklo_epi32(e, o), b = _mm256_unpackhi_epi32(e, o);
      __m256i* dst = reinterpret_cast<__m256i*>(out[q] + 16 * h);
      _mm256_storeu_si256(dst, _mm256_permute2x128_si256(a, b, 0x20));
      _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(a, b, 0x31));
    }
}

template <int NQ, int U>
void scan_all(const ScanArgs& s, const uint8_t* const* luts, size_t q0) {
  const size_t block_bytes = s.npos * 16;
  alignas(32) uint32_t tail[NQ][kFastscanBlockDocs];
  uint32_t* out[NQ];
  for (size_t b = 0; b * kFastscanBlockDocs < s.n; ++b) {
    const size_t base = b * kFastscanBlockDocs;
    const bool full = s.n - base >= kFastscanBlockDocs;
    for (int q = 0; q < NQ; ++q) out[q] = full ? s.out + (q0 + q) * s.out_stride + base : tail[q];
    if (s.npos * s.max_entry <= 65535)
      scan_block_short<NQ, U>(s.blocks + b * block_bytes, s.npos, luts, out);
    else
      scan_block<NQ, U>(s.blocks + b * block_bytes, s.npos, luts, s.max_entry, out);
    if (!full)
      for (int q = 0; q < NQ; ++q)
        std::memcpy(s.out + (q0 + q) * s.out_stride + base, tail[q],
                    (s.n - base) * sizeof(uint32_t));
  }
}

template <int U>
void scan_u(const ScanArgs& s) {
  // The pair's tables must stay in L1 next to the block (see fastscan_avx512.cpp), and with
  // U = 4 two queries' accumulators plus the split nibbles exceed 16 ymm registers (spills
  // made the pair slower than two single passes), so pairs only for P >= 3.
  const size_t fit = std::max<size_t>(1, (16u << 10) / (s.npos * 16));
  size_t q = 0;
  if (fit >= 2 && U <= 2)
    for (; q + kQueries <= s.nq; q += kQueries) scan_all<kQueries, U>(s, s.luts + q, q);
  for (; q < s.nq; ++q) scan_all<1, U>(s, s.luts + q, q);
}

}  // namespace

void scan_avx2(const ScanArgs& s) {
  // Add up to U lookups as bytes before widening: 4 for P <= 2, 2 for P = 3, 1 for P = 4.
  if (4 * s.max_entry <= 255) return scan_u<4>(s);
  if (2 * s.max_entry <= 255) return scan_u<2>(s);
  scan_u<1>(s);
}

}  // namespace bitgraph::fastscan_detail
