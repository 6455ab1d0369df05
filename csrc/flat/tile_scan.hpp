// Exact k-NN of a batch of queries over many rows with the transposed-tile kernels
// (simd/kernels.hpp): a block of rows is decoded and transposed into 16-row tiles once, then
// scored against all of a thread's queries, several at a time. Used by FlatIndex and by the
// filtered planner's exact plan (rows = the matching slots), so a filter shared by a batch is
// answered by one pass over the matches instead of one gather per query.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/parallel.hpp"
#include "core/topk.hpp"
#include "simd/kernels.hpp"
#include "storage/vector_store.hpp"

namespace bitgraph {

// Batches with at least this many queries per thread use the tiles: each decoded row block is
// then reused by enough queries to pay for its transposition.
constexpr size_t kMinQueriesForTiles = 8;
// How far ahead tile_scan prefetches the rows of a slot list.
constexpr size_t kPrefetchRows = 8;

// Keeps the admissible rows of one query's distances to rows [begin, begin + n) of `rows`
// (slot = rows ? rows[i] : i).
template <class Admissible>
inline void collect_rows(const float* dists, const uint32_t* rows, size_t begin, size_t n,
                         const Admissible& admissible, TopK& top) {
  for (size_t j = 0; j < n; ++j) {
    if (top.full() && !(dists[j] < top.worst())) continue;
    const uint32_t slot = rows ? rows[begin + j] : uint32_t(begin + j);
    if (admissible(slot)) top.push(dists[j], slot);
  }
}

// Whether a batch of nq queries on `threads` threads should use tile_scan.
template <class Store>
inline bool use_tiles(const Store& store, size_t nq, size_t threads) {
  if constexpr (Store::kCodes) {
    return false;  // codes have their own batch kernels (flat/code_scan.hpp)
  } else {
    return store.kind() != StorageKind::kInt8 &&
           (nq + threads - 1) / std::max<size_t>(threads, 1) >= kMinQueriesForTiles;
  }
}

// tops[i] (reset to k by the caller) receives the k closest admissible rows of query i. int8
// storage is not supported here (its distances use the stored scale and norm exactly).
template <class Admissible>
void tile_scan(const RowStore& store, const uint32_t* rows, size_t n_rows,
               const float* queries, size_t nq, size_t threads, const Admissible& admissible,
               std::vector<TopK>& tops) {
  const size_t dim = store.dim();
  const KernelTable& kernels = active_kernels();
  threads = std::max<size_t>(threads, 1);
  const size_t per_thread = (nq + threads - 1) / threads;
  const size_t rows_per_block =
      std::clamp<size_t>((128u << 10) / (dim * sizeof(float)) / kTileRows, 1, 256) * kTileRows;
  const size_t group = kernels.tile_queries;
  const DistTilesFn tiles_fn = kernels.tiles[int(store.metric())];
  const size_t n_chunks = (nq + per_thread - 1) / per_thread;
  parallel_for(n_chunks, threads, 1, [&](size_t chunk, size_t) {
    const size_t q0 = chunk * per_thread, q1 = std::min(nq, q0 + per_thread);
    std::vector<float> tiles(rows_per_block * dim);
    std::vector<float> dists(group * rows_per_block);
    std::vector<float> tile_min(group * (rows_per_block / kTileRows));
    std::vector<float> decoded(dim);
    std::vector<const float*> group_queries(group);
    for (size_t begin = 0; begin < n_rows; begin += rows_per_block) {
      const size_t n = std::min(rows_per_block, n_rows - begin);
      const size_t n_tiles = (n + kTileRows - 1) / kTileRows;
      for (size_t r = 0; r < n_tiles * kTileRows; ++r) {
        float* tile = tiles.data() + (r / kTileRows) * dim * kTileRows + r % kTileRows;
        if (rows && r + kPrefetchRows < n) {
          // Listed rows are scattered over the store: without this the copy below waits on
          // a cache miss per row (46% of a 1%-selective grouped search, by perf).
          const uint8_t* ahead = store.row(rows[begin + r + kPrefetchRows]);
          for (size_t off = 0; off < store.row_bytes(); off += 64) __builtin_prefetch(ahead + off);
        }
        if (r < n) {
          const size_t slot = rows ? rows[begin + r] : begin + r;
          const float* v = store.as_query(slot, decoded);
          for (size_t d = 0; d < dim; ++d) tile[d * kTileRows] = v[d];
        } else {
          for (size_t d = 0; d < dim; ++d) tile[d * kTileRows] = 0.0f;  // padding lanes
        }
      }
      for (size_t g = q0; g < q1; g += group) {
        const size_t m = std::min(group, q1 - g);
        for (size_t j = 0; j < m; ++j) group_queries[j] = queries + (g + j) * dim;
        tiles_fn(group_queries.data(), m, tiles.data(), n_tiles, dim, dists.data(),
                 rows_per_block, tile_min.data());
        for (size_t j = 0; j < m; ++j) {
          // Skip every tile whose smallest distance cannot enter the full top-k (after the
          // first blocks almost all of them: one compare per 16 rows).
          const float* qd = dists.data() + j * rows_per_block;
          const float* qmin = tile_min.data() + j * n_tiles;
          TopK& top = tops[g + j];
          for (size_t t = 0; t < n_tiles; ++t) {
            if (top.full() && !(qmin[t] < top.worst())) continue;
            const size_t first = t * kTileRows;
            collect_rows(qd + first, rows, begin + first, std::min(kTileRows, n - first),
                         admissible, top);
          }
        }
      }
    }
  });
}

// Writes the k found per query (padded with -1 / +inf), each distance recomputed with the row
// kernel: the tiles sum in another order, and a query's distances must not depend on the
// batch it came in (the tiles only choose the candidates).
template <class Store>
inline void write_rescored(const Store& store, std::vector<TopK>& tops,
                           const typename Store::Query* queries, size_t k, const int64_t* labels,
                           size_t threads, int64_t* out_labels, float* out_dists) {
  parallel_for(tops.size(), std::max<size_t>(threads, 1), 64, [&](size_t qi, size_t) {
    std::vector<Scored> found = tops[qi].sorted();
    for (Scored& f : found) f.dist = store.distance(queries + qi * store.query_width(), f.id);
    std::sort(found.begin(), found.end(), Closer{});
    for (size_t j = 0; j < k; ++j) {
      out_labels[qi * k + j] = j < found.size() ? labels[found[j].id] : -1;
      out_dists[qi * k + j] =
          j < found.size() ? found[j].dist : std::numeric_limits<float>::infinity();
    }
  });
}

// The slots whose bit is set in `bits` and that are not deleted, in slot order.
inline std::vector<uint32_t> set_slots(const uint64_t* bits, size_t words, size_t n_slots,
                                       const uint8_t* deleted, size_t expected) {
  std::vector<uint32_t> out;
  out.reserve(expected);
  const size_t n_words = std::min(words, (n_slots + 63) / 64);
  for (size_t w = 0; w < n_words; ++w) {
    for (uint64_t word = bits[w]; word; word &= word - 1) {
      const uint32_t slot = uint32_t(w * 64 + size_t(__builtin_ctzll(word)));
      if (slot < n_slots && !deleted[slot]) out.push_back(slot);
    }
  }
  return out;
}

}  // namespace bitgraph
