// HNSW queries. The unfiltered walk (no tombstones, no filter) is the build's search_layer:
// the linear pool, nothing paid for filtering. Anything that restricts results (tombstones,
// a filter, the planner's post-filter plan) goes through the one restricted walk, which
// traverses every node but only admits allowed ones into the results.
#include <algorithm>
#include <limits>
#include <queue>
#include <vector>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"
#include "hnsw/walk.hpp"

namespace bitgraph {

namespace {

struct NotDeleted {
  const uint8_t* deleted;
  bool operator()(uint32_t slot) const { return !deleted[slot]; }
};

}  // namespace

// Batches of at least this many queries walk level 0 in the order of their descent paths
// (measured on 100k x 384: +7-20% QPS at 256 queries, nothing measurable at 64).
constexpr size_t kOrderedBatch = 32;

template <class Store>
void HnswIndexT<Store>::search(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
                       const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  if (nq >= kOrderedBatch) {
    search_ordered(queries, nq, k, ef, threads, filter, out_labels, out_dists);
    return;
  }
  for_each_query(nq, threads, [&](size_t i, Scratch& s) {
    search_one(queries + i * store_.query_width(), k, ef, filter, s, out_labels + i * k,
               out_dists + i * k);
  });
}

// Queries whose descents passed through the same upper-level nodes walk the same part of
// level 0. Walking them one after another (the threads take neighbouring queries of that
// order) finds their vectors and links still in cache: a batch of 2,000 queries gained
// 17-34% QPS on 100k x 384 (150 MB of vectors, beyond the L3) and 7% on GloVe-50 100k (20 MB,
// inside it; bench/results/ab-search-batch-order.json). The results do not change: every
// walk is independent of the others.
template <class Store>
void HnswIndexT<Store>::search_ordered(const Query* queries, size_t nq, size_t k, size_t ef,
                                       size_t threads, const SlotFilter* filter,
                                       int64_t* out_labels, float* out_dists) const {
  const size_t width = store_.query_width();
  const int64_t ep = entry_point_.load();
  if (ep < 0) {
    std::fill(out_labels, out_labels + nq * k, int64_t(-1));
    std::fill(out_dists, out_dists + nq * k, std::numeric_limits<float>::infinity());
    return;
  }
  // The entry's own level bounds the descent (max_level_ may already name a newer entry).
  const int top = graph_.level(uint32_t(ep));
  const size_t depth = size_t(std::max(top, 0));
  const size_t stride = std::max<size_t>(depth, 1);  // (a one-level graph has no path)
  std::vector<uint32_t> paths(nq * stride), entries(nq), order(nq);
  parallel_for(nq, threads, 8, [&](size_t i, size_t) {
    entries[i] = greedy_descend(queries + i * width, uint32_t(ep), top, 0,
                                paths.data() + i * stride);
  });
  for (size_t i = 0; i < nq; ++i) order[i] = uint32_t(i);
  if (depth > 0)
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      const uint32_t* pa = paths.data() + size_t(a) * depth;
      const uint32_t* pb = paths.data() + size_t(b) * depth;
      return std::lexicographical_compare(pa, pa + depth, pb, pb + depth);
    });
  for_each_query(nq, threads, [&](size_t j, Scratch& s) {
    const size_t i = order[j];
    walk_from(queries + i * width, entries[i], k, ef, filter, s, out_labels + i * k,
              out_dists + i * k);
  });
}

template <class Store>
void HnswIndexT<Store>::search_one(const Query* q, size_t k, size_t ef, const SlotFilter* filter,
                           Scratch& s, int64_t* out_labels, float* out_dists) const {
  const int64_t ep = entry_point_.load();
  if (ep < 0) {
    std::fill(out_labels, out_labels + k, int64_t(-1));
    std::fill(out_dists, out_dists + k, std::numeric_limits<float>::infinity());
    return;
  }
  // The entry's own level bounds the descent (max_level_ may already name a newer entry).
  const uint32_t cur = greedy_descend(q, uint32_t(ep), graph_.level(uint32_t(ep)), 0);
  walk_from(q, cur, k, ef, filter, s, out_labels, out_dists);
}

template <class Store>
void HnswIndexT<Store>::walk_from(const Query* q, uint32_t cur, size_t k, size_t ef,
                                  const SlotFilter* filter, Scratch& s, int64_t* out_labels,
                                  float* out_dists) const {
  std::fill(out_labels, out_labels + k, int64_t(-1));
  std::fill(out_dists, out_dists + k, std::numeric_limits<float>::infinity());
  ef = std::max(ef, k);
  if (!filter && n_deleted_ == 0) {
    search_layer(q, cur, ef, 0, s);
    size_t n = std::min(k, s.pool.size());
    for (size_t i = 0; i < n; ++i) {
      out_labels[i] = labels_[s.pool.id_at(i)];
      out_dists[i] = s.pool.dist_at(i);
    }
    return;
  }
  TopK& results = s.results;
  results.reset(ef);
  constexpr size_t kNoBudget = size_t(-1);
  if (filter)
    restricted_walk(q, cur, FilterAdmits{deleted_.data(), filter}, kNoBudget, s,
                    results, nullptr);
  else
    restricted_walk(q, cur, NotDeleted{deleted_.data()}, kNoBudget, s, results, nullptr);
  const auto& sorted = results.sorted();
  size_t n = std::min(k, sorted.size());
  for (size_t i = 0; i < n; ++i) {
    out_labels[i] = labels_[sorted[i].id];
    out_dists[i] = sorted[i].dist;
  }
}

template class HnswIndexT<RowStore>;
template class HnswIndexT<CodeStore>;

}  // namespace bitgraph
