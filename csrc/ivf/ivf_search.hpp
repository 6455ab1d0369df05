// Search of an inverted-file (IVF) partition with 4-bit residual product-quantizer codes:
// probe the nearest lists, score their codes with the fast-scan lookup kernel
// (binary/fastscan.hpp), keep the best `rerank` candidates, and re-rank those with the exact
// float32 rows. Pure C++: the partition is trained and packed by the Python layer
// (python/bitgraph/ivf/), which owns every array; this only reads them.
//
// Estimated distance of a row x in list l with code c (x = centroid_l + residual, residual ~
// sum_j codebook[j][c_j]):
//   ip: -<q, x> ~ -<q, centroid_l> - sum_j <q_j, codebook[j][c_j]>
//   l2: |q - x|^2 ~ |q|^2 - 2 <q, centroid_l> - 2 sum_j <q_j, codebook[j][c_j]> + |x|^2
// (|x|^2 exact, kept per slot). The per-code sum does not depend on the list, so each query
// has one table for all its probed lists: its entries quantized to uint8 with one scale, the
// table sum is a uint32 the fast-scan kernel computes 32 rows at a time.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/types.hpp"

namespace bitgraph {

// Rows per fast-scan block; every list starts at a multiple of it (padding rows: slot -1).
constexpr size_t kIvfBlockRows = 32;
// Largest quantized table entry. 127 lets the kernel add two lookups as bytes before widening
// (AVX-512: U = 2), at half the resolution of 255; the exact re-rank absorbs the difference
// (glove-50 390k, 48 lists, re-rank 48: 63 levels -> recall@10 0.9501, 127 -> 0.9517, same QPS).
constexpr unsigned kIvfTableTop = 127;

struct IvfPartition {
  size_t dim = 0;
  size_t nlist = 0;
  size_t subspaces = 0;          // m: 4-bit codes per row
  size_t subspace_dim = 0;       // values per sub-space (m * subspace_dim >= dim, zero-padded)
  const float* centroids = nullptr;    // nlist x dim
  // The centroids as transposed 16-row tiles (simd/kernels.hpp, DistTilesFn): ceil(nlist / 16)
  // tiles of dim x 16 floats, padding lanes 0. The coarse step of a batch is then a few
  // queries at a time against all tiles, with no horizontal sums.
  const float* centroid_tiles = nullptr;
  const float* codebooks = nullptr;    // m x 16 x subspace_dim
  const uint64_t* list_starts = nullptr;  // nlist + 1 row positions, multiples of 32
  const uint8_t* blocks = nullptr;     // fast-scan blocks of all lists, in list order
  // Slot of each packed row position: -1 for padding and for rows removed since packing.
  const int32_t* row_slots = nullptr;
  const float* sq_norms = nullptr;     // per slot |x|^2 (l2), else nullptr
  const float* list_min_sq_norms = nullptr;  // per list, the smallest |x|^2 in it (l2)
};

// The float32 rows (slot order) and which slots may be returned.
struct IvfRows {
  const float* vectors = nullptr;      // n_slots x dim
  size_t n_slots = 0;
  const uint64_t* allowed = nullptr;   // bitset over slots (a filter), or nullptr for all
};

struct IvfParams {
  Metric metric = Metric::kInnerProduct;  // kL2 or kInnerProduct
  size_t k = 10;
  size_t nprobe = 1;
  size_t rerank = 40;  // candidates re-scored exactly (>= k)
};

// Positions per row in the block layout: m rounded up to a multiple of 4.
size_t ivf_positions(size_t subspaces);

// For each of nq queries: the k closest admissible slots (out_slots, -1 past the last found)
// and their exact distances (out_dists: l2 -> squared euclidean, ip -> -dot; +inf padding),
// closest first. Threads split the queries.
void ivf_search(const IvfPartition& part, const IvfRows& rows, const float* queries, size_t nq,
                const IvfParams& params, size_t threads, int64_t* out_slots, float* out_dists);

}  // namespace bitgraph
