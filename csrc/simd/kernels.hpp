// Distance kernels over encoded storage rows. One table per instruction set; dispatch.cpp picks
// the best table the CPU supports once, at first use.
//
// Every kernel takes a float32 query and encoded rows (docs/backend-contract.md) and writes
// distances where smaller is closer: l2 -> squared euclidean, ip -> -dot.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/types.hpp"

namespace bitgraph {

// Distance from `query` to one encoded row.
using DistOneFn = float (*)(const float* query, const uint8_t* row, size_t dim);
// Distances from `query` to rows[ids[i]] for i < n (gathered rows, prefetched ahead).
using DistGatherFn = void (*)(const float* query, const uint8_t* rows, size_t row_bytes,
                              size_t dim, const uint32_t* ids, size_t n, float* out);
// Distances from `query` to the n contiguous rows starting at `rows`.
using DistRangeFn = void (*)(const float* query, const uint8_t* rows, size_t row_bytes,
                             size_t dim, size_t n, float* out);

// Rows per tile of the batched exact scan: a tile holds 16 decoded rows transposed
// (dimension-major, 16 floats per dimension), so one vector register holds one dimension of
// all 16 rows and a query needs no horizontal sums.
constexpr size_t kTileRows = 16;
// Distances from nq queries (nq <= KernelTable::tile_queries) to the rows of n_tiles
// transposed float32 tiles: out[j * out_stride + r] for query j and row r of the run, and the
// smallest of each tile's 16 in out_min[j * n_tiles + t], so callers skip tiles that cannot
// enter a full top-k with one compare.
using DistTilesFn = void (*)(const float* const* queries, size_t nq, const float* tiles,
                             size_t n_tiles, size_t dim, float* out, size_t out_stride,
                             float* out_min);

struct DistanceKernels {
  DistOneFn one;
  DistGatherFn gather;
  DistRangeFn range;
};

// All kernels of one instruction set: [storage][metric].
struct KernelTable {
  const char* level;  // "avx512" | "avx2" | "generic"
  DistanceKernels kernels[3][2];
  // Batched exact scan over transposed tiles, [metric]; tile_queries queries at a time (as
  // many as the level's registers hold accumulators for).
  size_t tile_queries;
  DistTilesFn tiles[2];
};

namespace simd_generic { const KernelTable& table(); }
namespace simd_avx2 { const KernelTable& table(); }
namespace simd_avx512 { const KernelTable& table(); }

// The table in use: the best one the CPU supports, or the level forced by BITGRAPH_SIMD.
const KernelTable& active_kernels();
const DistanceKernels& kernels_for(StorageKind storage, Metric metric);
// Tables this build and CPU can run, best first (for tests that compare levels).
bool simd_level_supported(const char* level);
const KernelTable& kernels_for_level(const char* level);

}  // namespace bitgraph
