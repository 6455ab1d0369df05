// Internals shared by the fast-scan translation units (one per instruction set). Not part of
// the public API; the self-test calls the per-level scans directly to compare them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph::fastscan_detail {

// One scan: nq queries' tables (each npos * 16 bytes: entry v of position p at [16p + v])
// against the first n documents of `blocks`; distances to out[q * out_stride + i].
// max_entry bounds every table entry; kernels widen uint16 sums before they could overflow.
struct ScanArgs {
  const uint8_t* blocks;
  size_t n;
  size_t npos;
  const uint8_t* const* luts;
  size_t nq;
  unsigned max_entry;
  uint32_t* out;
  size_t out_stride;
};

using ScanFn = void (*)(const ScanArgs& args);

// Most queries one kernel call handles (accumulators must stay in registers).
constexpr size_t kMaxScanQueries = 4;

void scan_generic(const ScanArgs& args);
#if BITGRAPH_HAVE_X86_SIMD
void scan_avx2(const ScanArgs& args);
void scan_avx512(const ScanArgs& args);
#endif

// The query's table: npos * 16 bytes into `lut`. Returns the largest entry possible for this
// number of planes (a bound that does not depend on the query, so batches share it).
unsigned build_lut(const uint8_t* query_code, size_t planes, size_t code_dim, size_t npos,
                   uint8_t* lut);
// The same for an asymmetric query (binary_kernels.hpp, CodeLayout: kAsymmetricQueryBits bit
// planes of a level u per code plane): bit g = k * P + j costs u_jk when clear and
// 2^B - 1 - u_jk when set.
unsigned build_lut_asymmetric(const uint8_t* query, size_t planes, size_t code_dim, size_t npos,
                              uint8_t* lut);

}  // namespace bitgraph::fastscan_detail
