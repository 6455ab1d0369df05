// AVX-512BW fast-scan: one 64-byte load holds four nibble positions of a 32-document block;
// vpshufb looks up each 128-bit lane's position table for 16 documents. Compiled with
// -mavx512f -mavx512bw -mavx512vl only; dispatch calls it only where the CPU has them.
//
// Why no VBMI (vpermb) path: its 64-entry tables need 6-bit indices, i.e. a block layout
// different from the other levels', and the loop is bound by the nibble split and the
// shuffles, which vpermb would not remove. On CPUs that split 512-bit ops in two (Zen 4) this
// level runs at AVX2 speed for one query; it gains with several queries (32 registers).

// GCC 12 reports its own _mm512_undefined_* placeholders as maybe-uninitialized once
// inlined (a known false positive; simd/avx512.cpp gets -Wno-maybe-uninitialized for it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "binary/fastscan.hpp"
#include "binary/fastscan_detail.hpp"

namespace bitgraph::fastscan_detail {

namespace {

// See fastscan_avx2.cpp: acc_even - (acc_odd << 8) recovers the even-document sums.
inline void add_bytes(__m512i v, __m512i& acc_even, __m512i& acc_odd) {
  acc_even = _mm512_add_epi16(acc_even, v);
  acc_odd = _mm512_add_epi16(acc_odd, _mm512_srli_epi16(v, 8));
}

// The four 128-bit lanes hold the same 8 documents for four positions: fold them as uint32
// into 8 sums (kept as 16: lanes 0+2 then lanes 1+3, folded once per block).
inline void widen_into(__m512i v, uint32_t* tot) {
  __m512i w = _mm512_add_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)),
                               _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)));
  _mm512_store_si512(tot, _mm512_add_epi32(_mm512_load_si512(tot), w));
}

// One step: U consecutive quads of positions. The nibbles are split once for all queries;
// then each query's U lookups are summed as bytes (U * max_entry <= 255, no overflow) and
// added to its accumulators right away, so only one query's sums are live at a time (with
// every query's sums live the 4-query AVX-512 / 2-query AVX2 loops spilled to the stack).
template <int NQ, int U>
inline void step(const uint8_t* blk, const uint8_t* const* luts, size_t quad, __m512i (*acc)[4]) {
  const __m512i m4 = _mm512_set1_epi8(15);
  __m512i lo[U], hi[U];
  for (int u = 0; u < U; ++u) {
    const size_t off = 64 * (quad + u);
    __m512i d = _mm512_loadu_si512(blk + off);
    lo[u] = _mm512_and_si512(d, m4);
    hi[u] = _mm512_and_si512(_mm512_srli_epi16(d, 4), m4);
  }
  for (int q = 0; q < NQ; ++q) {
    __m512i slo = _mm512_setzero_si512(), shi = slo;
    for (int u = 0; u < U; ++u) {
      __m512i t = _mm512_loadu_si512(luts[q] + 64 * (quad + u));
      slo = _mm512_add_epi8(slo, _mm512_shuffle_epi8(t, lo[u]));
      shi = _mm512_add_epi8(shi, _mm512_shuffle_epi8(t, hi[u]));
    }
    add_bytes(slo, acc[q][0], acc[q][1]);
    add_bytes(shi, acc[q][2], acc[q][3]);
  }
}

// Four 128-bit lanes of uint16 sums -> one lane (no overflow: see scan_block_short).
inline __m128i fold_lanes(__m512i v) {
  __m256i h = _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_add_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Even and odd document sums of 16 documents -> 16 uint32 in document order.
inline void store_docs(__m128i even, __m128i odd, uint32_t* out) {
  __m256i docs = _mm256_set_m128i(_mm_unpackhi_epi16(even, odd), _mm_unpacklo_epi16(even, odd));
  _mm512_storeu_si512(out, _mm512_cvtepu16_epi32(docs));
}

// Short codes (npos * max_entry <= 65535, e.g. the IVF index's 4-bit product codes): every
// document's whole sum fits a uint16 lane, so the block needs no uint32 widening at all: the
// lanes fold in 16 bits and go out once. The widening epilogue of scan_block cost about as
// much as the lookups themselves at 52 positions.
template <int NQ, int U>
void scan_block_short(const uint8_t* blk, size_t npos, const uint8_t* const* luts,
                      uint32_t* const* out) {
  const size_t quads = npos / 4;
  __m512i acc[NQ][4];
  for (int q = 0; q < NQ; ++q)
    for (int a = 0; a < 4; ++a) acc[q][a] = _mm512_setzero_si512();
  size_t p = 0;
  for (; p + U <= quads; p += U) step<NQ, U>(blk, luts, p, acc);
  for (; p < quads; ++p) step<NQ, 1>(blk, luts, p, acc);
  for (int q = 0; q < NQ; ++q)
    for (int h = 0; h < 2; ++h) {
      const __m512i odd = acc[q][2 * h + 1];
      const __m512i even = _mm512_sub_epi16(acc[q][2 * h], _mm512_slli_epi16(odd, 8));
      store_docs(fold_lanes(even), fold_lanes(odd), out[q] + 16 * h);
    }
}

template <int NQ, int U>
void scan_block(const uint8_t* blk, size_t npos, const uint8_t* const* luts, unsigned max_entry,
                uint32_t* const* out) {
  alignas(64) uint32_t tot[NQ][4][16] = {};
  const size_t quads = npos / 4;
  const size_t chunk = size_t(65535 / (U * max_entry)) * U;
  for (size_t c0 = 0; c0 < quads; c0 += chunk) {
    const size_t c1 = std::min(quads, c0 + chunk);
    __m512i acc[NQ][4];
    for (int q = 0; q < NQ; ++q)
      for (int a = 0; a < 4; ++a) acc[q][a] = _mm512_setzero_si512();
    size_t p = c0;
    for (; p + U <= c1; p += U) step<NQ, U>(blk, luts, p, acc);
    for (; p < c1; ++p) step<NQ, 1>(blk, luts, p, acc);
    for (int q = 0; q < NQ; ++q)
      for (int a = 0; a < 4; a += 2) {
        widen_into(_mm512_sub_epi16(acc[q][a], _mm512_slli_epi16(acc[q][a + 1], 8)), tot[q][a]);
        widen_into(acc[q][a + 1], tot[q][a + 1]);
      }
  }
  for (int q = 0; q < NQ; ++q)
    for (int h = 0; h < 2; ++h) {
      __m512i e16 = _mm512_load_si512(tot[q][2 * h]), o16 = _mm512_load_si512(tot[q][2 * h + 1]);
      __m256i e = _mm256_add_epi32(_mm512_castsi512_si256(e16), _mm512_extracti64x4_epi64(e16, 1));
      __m256i o = _mm256_add_epi32(_mm512_castsi512_si256(o16), _mm512_extracti64x4_epi64(o16, 1));
      __m256i a = _mm256_unpacklo_epi32(e, o), b = _mm256_unpackhi_epi32(e, o);
      __m256i* dst = reinterpret_cast<__m256i*>(out[q] + 16 * h);
      _mm256_storeu_si256(dst, _mm256_permute2x128_si256(a, b, 0x20));
      _mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(a, b, 0x31));
    }
}

template <int NQ, int U>
void scan_all(const ScanArgs& s, const uint8_t* const* luts, size_t q0) {
  const size_t block_bytes = s.npos * 16;
  alignas(64) uint32_t tail[NQ][kFastscanBlockDocs];
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
  // The group's tables must stay in L1 next to the block, or the saved loads come back as
  // misses (P = 4, m = 384 tables are 6 KiB each): at most ~16 KiB of tables per pass.
  const size_t fit = std::max<size_t>(1, (16u << 10) / (s.npos * 16));
  size_t q = 0;
  if (fit >= 4)
    for (; q + 4 <= s.nq; q += 4) scan_all<4, U>(s, s.luts + q, q);
  if (fit >= 2)
    for (; q + 2 <= s.nq; q += 2) scan_all<2, U>(s, s.luts + q, q);
  for (; q < s.nq; ++q) scan_all<1, U>(s, s.luts + q, q);
}

}  // namespace

void scan_avx512(const ScanArgs& s) {
  if (4 * s.max_entry <= 255) return scan_u<4>(s);
  if (2 * s.max_entry <= 255) return scan_u<2>(s);
  scan_u<1>(s);
}

}  // namespace bitgraph::fastscan_detail
