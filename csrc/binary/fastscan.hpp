// Lookup-table ("fast-scan") SDC distances between binary codes (docs/backend-contract.md,
// "Binary codes"). Pure functions: no state beyond the one-time choice of instruction set.
//
// Why a table: per code dimension k the SDC contribution
//   sum_{i,j<P} w_i w_j [q_ik != d_jk]
// depends only on the P query bits and the P document bits of that dimension, and it splits
// over the document planes j. So each document nibble (4 consecutive bits of the code
// flattened dimension-major, plane-minor: bit g = k * P + j) costs one of 16 small integers
// fixed per query, and a pshufb scans 32 documents per instruction.
//
// Block layout (what fastscan_pack writes, every level reads the same bytes):
//   npos  = ceil(code_dim * planes / 4) nibble positions, padded up to a multiple of 4
//           (one zmm holds four positions); padding nibbles and padding documents are 0;
//   block b holds documents 32b .. 32b+31 in npos * 16 bytes: position p occupies bytes
//   [16p, 16p+16); byte i = nibble(doc 32b+i) | nibble(doc 32b+16+i) << 4;
//   nibble(doc, p) bit t = bit (g % P plane, g / P dimension) of the code, g = 4p + t
//   (0 past code_dim).
// For P = 1 a nibble is 4 dimensions, P = 2 two dimensions x two planes, P = 4 one dimension x
// four planes, and P = 3 packs 4 dimensions into 3 nibbles (no padding bits in between).
//
// Exactness: a table entry is at most 225 (P = 4), so uint8 tables hold it; the kernels
// accumulate in uint16 lanes and widen to uint32 before a lane could overflow, so every
// result equals the popcount definition exactly for any code_dim.
//
// Threading: none inside. Callers split work on 32-document boundaries: documents
// [32a, 32b) are the blocks [a, b) and code rows [32a, 32b).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

constexpr size_t kFastscanBlockDocs = 32;

// Nibble positions per document (padded to a multiple of 4).
size_t fastscan_positions(size_t planes, size_t code_dim);
// Bytes per 32-document block: 16 * fastscan_positions(planes, code_dim).
size_t fastscan_block_bytes(size_t planes, size_t code_dim);

// Packs n code rows (planes * W * 8 bytes each, W = ceil(code_dim / 64)) into
// ceil(n / 32) blocks at `blocks` (ceil(n / 32) * fastscan_block_bytes bytes).
// Throws ValueError unless 1 <= planes <= 4 and code_dim >= 1.
void fastscan_pack(const uint8_t* codes, size_t n, size_t planes, size_t code_dim,
                   uint8_t* blocks);

// SDC distances from one query code (a code row) to the n documents packed in `blocks`.
void fastscan_sdc(const uint8_t* blocks, size_t n, const uint8_t* query_code, size_t planes,
                  size_t code_dim, uint32_t* out);

// nq queries (rows of `queries`, one code row each) against the same n documents:
// out[q * n + i]. Each block is read once per few queries (register blocking), so this beats
// nq calls of fastscan_sdc when the blocks do not fit in cache.
void fastscan_sdc_batch(const uint8_t* blocks, size_t n, const uint8_t* queries, size_t nq,
                        size_t planes, size_t code_dim, uint32_t* out);

// Asymmetric distances (binary_kernels.hpp, CodeLayout) of nq asymmetric queries (rows of
// planes * kAsymmetricQueryBits * W * 8 bytes) against the same blocks: out[q * n + i].
void fastscan_asymmetric_batch(const uint8_t* blocks, size_t n, const uint8_t* queries,
                               size_t nq, size_t planes, size_t code_dim, uint32_t* out);

// Queries' own tables against packed blocks of 4-bit codes (any code, e.g. product-quantizer
// nibbles: the IVF index): out[q * out_stride + i] = sum_p luts[q][16p + nibble(doc i, p)] for
// the first n documents, npos positions each (a multiple of 4; the block layout above), every
// entry <= max_entry. Up to 4 queries share each block load (register blocking).
void fastscan_lut_scan(const uint8_t* blocks, size_t n, size_t npos, const uint8_t* const* luts,
                       size_t nq, unsigned max_entry, uint32_t* out, size_t out_stride);

// The instruction set fastscan_sdc runs with: "avx512" | "avx2" | "generic". Chosen once; the
// environment variable BITGRAPH_SIMD (as for the float kernels) may force a lower level.
const char* fastscan_level();

}  // namespace bitgraph
