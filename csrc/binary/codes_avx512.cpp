// Code kernels with AVX-512 VPOPCNTDQ: eight words of XOR + popcount per instruction.
// Built with -mavx512f -mavx512vpopcntdq; used only when the CPU reports VPOPCNTDQ.
#include <immintrin.h>

#include <cstdint>

#include "binary/binary_kernels.hpp"

namespace bitgraph::codes_avx512 {
namespace {

constexpr size_t kMaxPlanes = 8;

inline __mmask8 tail_mask(size_t left) {
  return left >= 8 ? __mmask8(0xFF) : __mmask8((1u << left) - 1);
}

// Per plane-pair sums accumulate in acc[i + j] (pairs with the same i + j share a weight), so
// the weights cost 2P-1 shifts per row instead of P^2.
template <size_t PLANES>
inline __m512i sdc_lanes(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t P = PLANES ? PLANES : layout.planes;
  const size_t W = layout.words;
  const size_t pb = 8 * W;
  __m512i acc[2 * kMaxPlanes - 1];
  for (size_t s = 0; s + 1 < 2 * P; ++s) acc[s] = _mm512_setzero_si512();
  for (size_t c = 0; c < W; c += 8) {
    const __mmask8 m = tail_mask(W - c);
    __m512i qv[kMaxPlanes], dv[kMaxPlanes];
    for (size_t i = 0; i < P; ++i) {
      qv[i] = _mm512_maskz_loadu_epi64(m, q + i * pb + 8 * c);
      dv[i] = _mm512_maskz_loadu_epi64(m, d + i * pb + 8 * c);
    }
    for (size_t i = 0; i < P; ++i)
      for (size_t j = 0; j < P; ++j)
        acc[i + j] = _mm512_add_epi64(acc[i + j],
                                      _mm512_popcnt_epi64(_mm512_xor_si512(qv[i], dv[j])));
  }
  __m512i total = acc[2 * (P - 1)];
  for (size_t s = 0; s + 2 < 2 * P; ++s)
    total = _mm512_add_epi64(total, _mm512_slli_epi64(acc[s], unsigned(2 * (P - 1) - s)));
  return total;  // the distance is the sum of the 8 lanes
}

// One word per plane (code_dim <= 64): the document's planes fill one register, and each query
// plane is broadcast against all of them, so P planes cost P XOR+popcounts instead of P^2.
inline __m512i sdc_one_word(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t P = layout.planes;
  const __mmask8 m = tail_mask(P);
  const __m512i dv = _mm512_maskz_loadu_epi64(m, d);
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m512i acc = _mm512_setzero_si512();
  for (size_t i = 0; i < P; ++i) {
    const __m512i qi = _mm512_maskz_loadu_epi64(1, q + 8 * i);
    const __m512i pc =
        _mm512_maskz_popcnt_epi64(m, _mm512_xor_si512(_mm512_broadcastq_epi64(
                                                         _mm512_castsi512_si128(qi)), dv));
    // lane j weighs q_i against d_j by 2^(2(P-1) - i - j)
    const __m512i shift = _mm512_sub_epi64(_mm512_set1_epi64(int64_t(2 * (P - 1) - i)), lane);
    acc = _mm512_add_epi64(acc, _mm512_maskz_sllv_epi64(m, pc, shift));
  }
  return acc;
}

// Two words per plane (65 to 128 bits): the document's planes fill one register (planes 0-3)
// or two (planes 4-7), and each query plane's two words are broadcast against them, so P planes
// cost P (or 2P) XOR+popcounts instead of 2P^2 (6 x 128 bits: 48 -> 13 ns/doc, one thread).
inline __m512i sdc_two_words(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t P = layout.planes;
  const __mmask8 m0 = tail_mask(2 * P);
  const __mmask8 m1 = P > 4 ? tail_mask(2 * (P - 4)) : __mmask8(0);
  const __m512i d0 = _mm512_maskz_loadu_epi64(m0, d);
  const __m512i d1 = _mm512_maskz_loadu_epi64(m1, d + 64);
  // document plane of each lane
  const __m512i j0 = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i j1 = _mm512_set_epi64(7, 7, 6, 6, 5, 5, 4, 4);
  __m512i acc = _mm512_setzero_si512();
  for (size_t i = 0; i < P; ++i) {
    const __m128i q2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * i));
    const __m512i qi = _mm512_shuffle_i64x2(_mm512_castsi128_si512(q2),
                                            _mm512_castsi128_si512(q2), 0);
    const __m512i top = _mm512_set1_epi64(int64_t(2 * (P - 1) - i));
    // lane of document plane j weighs q_i against d_j by 2^(2(P-1) - i - j)
    acc = _mm512_add_epi64(acc, _mm512_maskz_sllv_epi64(
                                    m0, _mm512_popcnt_epi64(_mm512_xor_si512(qi, d0)),
                                    _mm512_sub_epi64(top, j0)));
    if (m1)
      acc = _mm512_add_epi64(acc, _mm512_maskz_sllv_epi64(
                                      m1, _mm512_popcnt_epi64(_mm512_xor_si512(qi, d1)),
                                      _mm512_sub_epi64(top, j1)));
  }
  return acc;
}

// Asymmetric: each code plane t is loaded once and compared with the query's B bit planes of
// u_t; per-bit sums share a weight, so the weights cost B shifts per row.
inline __m512i asymmetric_lanes(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t P = layout.planes, W = layout.words, B = layout.query_bits;
  const size_t pb = 8 * W;
  __m512i acc[8];
  for (size_t i = 0; i < B; ++i) acc[i] = _mm512_setzero_si512();
  for (size_t t = 0; t < P; ++t)
    for (size_t c = 0; c < W; c += 8) {
      const __mmask8 m = tail_mask(W - c);
      const __m512i dv = _mm512_maskz_loadu_epi64(m, d + t * pb + 8 * c);
      for (size_t i = 0; i < B; ++i)
        acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_xor_si512(
            _mm512_maskz_loadu_epi64(m, q + (t * B + i) * pb + 8 * c), dv)));
    }
  __m512i total = acc[B - 1];
  for (size_t i = 0; i + 1 < B; ++i)
    total = _mm512_add_epi64(total, _mm512_slli_epi64(acc[i], unsigned(B - 1 - i)));
  return total;
}

// The common asymmetric shape, B = 4 query bits, unrolled at compile time.
template <size_t PLANES>
inline __m512i asymmetric4_lanes(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t W = layout.words;
  const size_t pb = 8 * W;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t t = 0; t < PLANES; ++t)
    for (size_t c = 0; c < W; c += 8) {
      const __mmask8 m = tail_mask(W - c);
      const __m512i dv = _mm512_maskz_loadu_epi64(m, d + t * pb + 8 * c);
      const uint8_t* qt = q + 4 * t * pb + 8 * c;
      a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_maskz_loadu_epi64(m, qt), dv)));
      a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_maskz_loadu_epi64(m, qt + pb), dv)));
      a2 = _mm512_add_epi64(a2, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_maskz_loadu_epi64(m, qt + 2 * pb), dv)));
      a3 = _mm512_add_epi64(a3, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_maskz_loadu_epi64(m, qt + 3 * pb), dv)));
    }
  return _mm512_add_epi64(_mm512_add_epi64(_mm512_slli_epi64(a0, 3), _mm512_slli_epi64(a1, 2)),
                          _mm512_add_epi64(_mm512_slli_epi64(a2, 1), a3));
}

inline __m512i hamming_lanes(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  const size_t W = layout.planes * layout.words;
  __m512i acc = _mm512_setzero_si512();
  for (size_t c = 0; c < W; c += 8) {
    const __mmask8 m = tail_mask(W - c);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_maskz_loadu_epi64(m, q + 8 * c),
                                    _mm512_maskz_loadu_epi64(m, d + 8 * c))));
  }
  return acc;
}

// Lane sums of eight rows at once: out[r] = sum of v[r]'s lanes. A transposing add tree
// (21 instructions) instead of eight horizontal reductions (~8 each).
inline __m256 sum_lanes8(const __m512i v[8]) {
  __m512i p[4];
  for (int i = 0; i < 4; ++i)
    p[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
  // p[i] lanes (128-bit) L hold (partial of v[2i], partial of v[2i+1]) for qword pair L.
  const __m512i ab = _mm512_add_epi64(_mm512_shuffle_i64x2(p[0], p[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_i64x2(p[0], p[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i cd = _mm512_add_epi64(_mm512_shuffle_i64x2(p[2], p[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_i64x2(p[2], p[3], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i s = _mm512_add_epi64(_mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_cvtepi64_ps(s);  // exact: distances stay below 2^24
}

template <__m512i (*Lanes)(const uint8_t*, const uint8_t*, const CodeLayout&)>
float one(const uint8_t* q, const uint8_t* row, const CodeLayout& layout) {
  return float(_mm512_reduce_add_epi64(Lanes(q, row, layout)));
}

inline void prefetch_row(const uint8_t* row, size_t rb) {
  for (size_t off = 0; off < rb; off += 64) _mm_prefetch((const char*)row + off, _MM_HINT_T0);
}

template <__m512i (*Lanes)(const uint8_t*, const uint8_t*, const CodeLayout&)>
void gather(const uint8_t* q, const uint8_t* rows, const CodeLayout& layout, const uint32_t* ids,
            size_t n, float* out) {
  const size_t rb = layout.row_bytes();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8 && i + 8 + j < n; ++j) prefetch_row(rows + size_t(ids[i + 8 + j]) * rb, rb);
    __m512i v[8];
    for (size_t j = 0; j < 8; ++j) v[j] = Lanes(q, rows + size_t(ids[i + j]) * rb, layout);
    _mm256_storeu_ps(out + i, sum_lanes8(v));
  }
  for (; i < n; ++i) out[i] = float(_mm512_reduce_add_epi64(Lanes(q, rows + size_t(ids[i]) * rb, layout)));
}

template <__m512i (*Lanes)(const uint8_t*, const uint8_t*, const CodeLayout&)>
void range(const uint8_t* q, const uint8_t* rows, const CodeLayout& layout, size_t n,
           float* out) {
  const size_t rb = layout.row_bytes();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512i v[8];
    for (size_t j = 0; j < 8; ++j) v[j] = Lanes(q, rows + (i + j) * rb, layout);
    _mm256_storeu_ps(out + i, sum_lanes8(v));
  }
  for (; i < n; ++i) out[i] = float(_mm512_reduce_add_epi64(Lanes(q, rows + i * rb, layout)));
}

__m512i sdc_any(const uint8_t* q, const uint8_t* d, const CodeLayout& layout) {
  return sdc_lanes<0>(q, d, layout);
}

template <__m512i (*Lanes)(const uint8_t*, const uint8_t*, const CodeLayout&)>
constexpr CodeKernels kernels_of() {
  return CodeKernels{one<Lanes>, gather<Lanes>, range<Lanes>};
}

// Plane counts specialised at compile time (the loops over plane pairs unroll).
CodeKernels select(CodeDistance distance, const CodeLayout& layout) {
  if (distance == CodeDistance::kHamming) return kernels_of<hamming_lanes>();
  if (distance == CodeDistance::kAsymmetric) {
    if (layout.query_bits == 4 && layout.planes == 1) return kernels_of<asymmetric4_lanes<1>>();
    if (layout.query_bits == 4 && layout.planes == 2) return kernels_of<asymmetric4_lanes<2>>();
    return kernels_of<asymmetric_lanes>();
  }
  if (layout.words == 1 && layout.planes > 1) return kernels_of<sdc_one_word>();
  if (layout.words == 2 && layout.planes > 2) return kernels_of<sdc_two_words>();
  switch (layout.planes) {
    case 1: return kernels_of<sdc_lanes<1>>();
    case 2: return kernels_of<sdc_lanes<2>>();
    case 3: return kernels_of<sdc_lanes<3>>();
    case 4: return kernels_of<sdc_lanes<4>>();
    default: return kernels_of<sdc_any>();
  }
}

}  // namespace

const CodeKernelTable& table() {
  static const CodeKernelTable t{"avx512", select};
  return t;
}

}  // namespace bitgraph::codes_avx512
