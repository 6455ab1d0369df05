// Distances between binary codes (docs/backend-contract.md, "Binary codes"): exact weighted
// popcounts over bit planes (SDC) and Hamming. Pure functions over packed rows, one
// implementation per instruction set, chosen once at first use like the float kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

// Query bits per dimension of the asymmetric distance: 4 (RaBitQ's choice too) loses nothing
// measurable against a float query on 384-d sentence embeddings (bench/one_bit_probe.py).
constexpr size_t kAsymmetricQueryBits = 4;

// Shape of a code row: `planes` bit planes of `words` uint64 words each (P * W * 8 bytes), then,
// when `offsets`, one uint32 offset (the row's mean-correction term, see code_offset below).
//
// Queries have the same layout, except with `query_bits` > 0 (the asymmetric distance): there
// a query holds, for each code plane t, `query_bits` bit planes of an unsigned integer u_t
// (most significant first, W words each), then its offset. The distance
//   sum_t sum_i 2^(B-1-i) popcount(Q_{t,i} XOR D_t)  =  sum_t sum_k (d_tk ? 2^B-1-u_tk : u_tk)
// falls as sum_t <u_t - (2^B-1)/2, 2 d_t - 1> rises: a B-bit query against the 1-bit codes.
struct CodeLayout {
  size_t planes = 1;
  size_t words = 1;
  bool offsets = false;
  size_t query_bits = 0;  // 0: symmetric (queries are code rows)
  size_t code_bytes() const { return planes * words * 8; }
  size_t row_bytes() const { return code_bytes() + (offsets ? 4 : 0); }
  size_t query_code_bytes() const { return code_bytes() * (query_bits ? query_bits : 1); }
  size_t query_bytes() const { return query_code_bytes() + (offsets ? 4 : 0); }
  // Distances travel as float32, exact up to 2^24: the largest SDC value,
  // 64 W (2^P - 1)^2 (asymmetric: 64 W P (2^B - 1)), plus two offsets (each below
  // kMaxCodeOffset) must stay below it (e.g. 4 planes: up to 74,000 bits per plane without
  // offsets, 37,000 with them).
  bool exact_in_float() const {
    const double w = double((uint64_t(1) << planes) - 1);
    const double largest = query_bits
        ? 64.0 * double(words) * double(planes) * double((uint64_t(1) << query_bits) - 1)
        : 64.0 * double(words) * w * w;
    const double room = offsets ? double(1 << 23) : double(1 << 24);
    return planes <= 8 && query_bits <= 8 && largest < room;
  }
};

// Offsets are below 2^22, so two of them plus an SDC value below 2^23 stay exact in float32.
constexpr uint32_t kMaxCodeOffset = (1u << 22) - 1;

// The offset stored after the code of a row of an offset layout. A distance with offsets is
// code distance + offset(query row) + offset(stored row): the per-vector terms of the inner
// product that centred codes cannot carry (docs/backend-contract.md, "Code offsets").
inline uint32_t code_offset(const uint8_t* row, const CodeLayout& layout) {
  uint32_t o;
  __builtin_memcpy(&o, row + layout.code_bytes(), 4);
  return o;
}
// The offset of a query row (after its query_code_bytes).
inline uint32_t query_offset(const uint8_t* query, const CodeLayout& layout) {
  uint32_t o;
  __builtin_memcpy(&o, query + layout.query_code_bytes(), 4);
  return o;
}

// Every function takes the query code and stored code rows (row_bytes apart) and writes exact
// integer code distances as float32 (smaller is closer), offsets not included: the store adds
// them. Rows need no alignment.
using CodeOneFn = float (*)(const uint8_t* query, const uint8_t* row, const CodeLayout& layout);
using CodeGatherFn = void (*)(const uint8_t* query, const uint8_t* rows, const CodeLayout& layout,
                              const uint32_t* ids, size_t n, float* out);
using CodeRangeFn = void (*)(const uint8_t* query, const uint8_t* rows, const CodeLayout& layout,
                             size_t n, float* out);

struct CodeKernels {
  CodeOneFn one;
  CodeGatherFn gather;
  CodeRangeFn range;
};

enum class CodeDistance : int { kSdc = 0, kHamming = 1, kAsymmetric = 2 };

// All code kernels of one instruction set.
struct CodeKernelTable {
  const char* level;  // "avx512" (VPOPCNTDQ) | "avx2" (POPCNT) | "generic"
  // The kernels for a distance and code shape (common shapes are specialised).
  CodeKernels (*select)(CodeDistance distance, const CodeLayout& layout);
};

namespace codes_generic { const CodeKernelTable& table(); }
namespace codes_avx2 { const CodeKernelTable& table(); }
namespace codes_avx512 { const CodeKernelTable& table(); }

// The best table this CPU runs (BITGRAPH_SIMD=generic|avx2|avx512 forces a lower level).
const CodeKernelTable& active_code_kernels();
CodeKernels code_kernels_for(CodeDistance distance, const CodeLayout& layout);
bool code_level_supported(const char* level);
const CodeKernelTable& code_kernels_for_level(const char* level);

}  // namespace bitgraph
