// HNSW queries. The unfiltered walk (no tombstones, no filter) is the build's search_layer:
// the linear pool, nothing paid for filtering. Anything that restricts results (tombstones,
// a filter, the planner's post-filter plan) goes through the one restricted walk, which
// traverses every node but only admits allowed ones into the results.
#include <algorithm>
#include <limits>
#include <queue>

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

template <class Store>
void HnswIndexT<Store>::search(const Query* queries, size_t nq, size_t k, size_t ef, size_t threads,
                       const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  for_each_query(nq, threads, [&](size_t i, Scratch& s) {
    search_one(queries + i * store_.query_width(), k, ef, filter, s, out_labels + i * k,
               out_dists + i * k);
  });
}

template <class Store>
void HnswIndexT<Store>::search_one(const Query* q, size_t k, size_t ef, const SlotFilter* filter,
                           Scratch& s, int64_t* out_labels, float* out_dists) const {
  std::fill(out_labels, out_labels + k, int64_t(-1));
  std::fill(out_dists, out_dists + k, std::numeric_limits<float>::infinity());
  const int64_t ep = entry_point_.load();
  if (ep < 0) return;
  ef = std::max(ef, k);
  // The entry's own level bounds the descent (max_level_ may already name a newer entry).
  uint32_t cur = greedy_descend(q, uint32_t(ep), graph_.level(uint32_t(ep)), 0);

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
