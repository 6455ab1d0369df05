// Filtered HNSW queries: the per-query planner and its two graph walks.
//
// Plans (FilterPlan): with few matches an exact scan of the matching set is both cheaper than
// a walk and exact. Otherwise the upper levels are descended without the filter (they only
// pick a starting region) and level 0 is walked either
//  - ACORN-1 style (low selectivity): only matching nodes are scored and queued; a neighbour
//    that does not match is looked through (its own neighbours are considered, two hops),
//    which keeps the predicate subgraph connected where a plain walk would stall; a few
//    entry points drawn from the matching set make it reach matches far from the query;
//  - post-filter (high selectivity): the normal walk scores every node but only matching
//    nodes enter the results, whose worst distance bounds the walk.
// Guard: a walk that scores more nodes than there are matches stops and the query is
// finished by the exact scan, which bounds the cost at about twice the scan and always
// returns min(k, matches) results.
#include <algorithm>
#include <limits>
#include <queue>

#include "filter/bitset_program.hpp"
#include "filter/exact_scan.hpp"
#include "flat/tile_scan.hpp"
#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"
#include "hnsw/walk.hpp"

namespace bitgraph {

template <class Store>
void HnswIndexT<Store>::search_filtered(const Query* queries, size_t nq, size_t k, size_t ef,
                                size_t threads, const SlotFilter* filters,
                                const size_t* group_offsets, size_t n_filters,
                                const PlannerParams& planner, int64_t* out_labels,
                                float* out_dists, int8_t* out_plans, int64_t* out_scored) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  std::vector<SlotFilter> fs(filters, filters + n_filters);
  for (SlotFilter& f : fs)
    if (f.count == SlotFilter::kUnknownCount)
      f.count = popcount_words(f.bits, std::min(f.words, bitset_words(n_slots_)));
  const size_t dim = store_.query_width();
  const size_t ef_k = std::max(ef, k);
  std::vector<uint32_t> filter_of(nq);
  std::vector<uint32_t> one_by_one;  // queries planned one at a time
  one_by_one.reserve(nq);
  std::vector<uint32_t> tiled;  // groups answered by one tiled exact pass each
  for (size_t g = 0; g < n_filters; ++g) {
    const size_t q0 = group_offsets[g], q1 = group_offsets[g + 1];
    const SlotFilter& f = fs[g];
    // A group that shares its filter and is exactly scanned makes one tiled pass over the
    // matches for all its queries (about 10x cheaper per query than a gather per query).
    if (entry_point_.load() >= 0 && f.count > 0 && use_tiles(store_, q1 - q0, 1) &&
        exact_is_cheaper(f.count, planner.exact_ratio_batched, ef_k)) {
      tiled.push_back(uint32_t(g));
      continue;
    }
    for (size_t i = q0; i < q1; ++i) {
      filter_of[i] = uint32_t(g);
      one_by_one.push_back(uint32_t(i));
    }
  }
  auto scan_group = [&](size_t g, size_t group_threads) {
    if constexpr (!Store::kCodes) {  // use_tiles is false for codes: never reached with them
      const size_t q0 = group_offsets[g], q1 = group_offsets[g + 1];
      const size_t scanned =
          exact_scan_tiled(store_, deleted_.data(), n_slots_, fs[g], queries + q0 * dim, q1 - q0,
                           k, group_threads, labels_.data(), out_labels + q0 * k,
                           out_dists + q0 * k);
      std::fill(out_plans + q0, out_plans + q1, int8_t(FilterPlan::kExact));
      std::fill(out_scored + q0, out_scored + q1, int64_t(scanned));
    } else {
      (void)g;
      (void)group_threads;
    }
  };
  // Few large groups: each one uses every thread; many small ones: one group per thread.
  if (tiled.size() >= 2 * std::max<size_t>(threads, 1)) {
    parallel_for(tiled.size(), threads, 1, [&](size_t j, size_t) { scan_group(tiled[j], 1); });
  } else {
    for (uint32_t g : tiled) scan_group(g, threads);
  }
  // The rest in one parallel pass, whatever their filters: many small groups then cost no
  // more than one call.
  for_each_query(one_by_one.size(), threads, [&](size_t j, Scratch& s) {
    const size_t i = one_by_one[j];
    search_one_filtered(queries + i * dim, k, ef, fs[filter_of[i]], planner, s,
                        out_labels + i * k, out_dists + i * k, out_plans + i, out_scored + i);
  });
}

template <class Store>
void HnswIndexT<Store>::search_one_filtered(const Query* q, size_t k, size_t ef, const SlotFilter& filter,
                                    const PlannerParams& planner, Scratch& s,
                                    int64_t* out_labels, float* out_dists, int8_t* plan,
                                    int64_t* scored) const {
  std::fill(out_labels, out_labels + k, int64_t(-1));
  std::fill(out_dists, out_dists + k, std::numeric_limits<float>::infinity());
  *plan = int8_t(FilterPlan::kExact);
  *scored = 0;
  const int64_t ep = entry_point_.load();
  const size_t matches = filter.count;
  if (ep < 0 || matches == 0) return;
  ef = std::max(ef, k);
  TopK& results = s.results;
  bool exact = matches <= k || exact_is_cheaper(matches, planner.exact_ratio, ef);
  if (!exact && matches == size() && n_deleted_ == 0) {
    // The filter matches every item: the unfiltered walk answers it exactly as well.
    *plan = int8_t(FilterPlan::kPostFilter);
    search_one(q, k, ef, nullptr, s, out_labels, out_dists);
    return;
  }
  if (!exact) {
    uint32_t cur = greedy_descend(q, uint32_t(ep), graph_.level(uint32_t(ep)), 0);
    const double selectivity = double(matches) / double(std::max<size_t>(1, size()));
    bool finished;
    if (selectivity < planner.acorn_below) {
      *plan = int8_t(FilterPlan::kAcorn);
      finished = acorn_walk(q, cur, ef, filter, planner.seeds, matches, s, scored);
      if (finished) {
        results.reset(k);
        for (size_t i = 0; i < s.pool.size(); ++i) results.push(s.pool.dist_at(i), s.pool.id_at(i));
      }
    } else {
      *plan = int8_t(FilterPlan::kPostFilter);
      results.reset(ef);
      finished = restricted_walk(q, cur, FilterAdmits{deleted_.data(), &filter}, matches, s,
                                 results, scored);
    }
    // A walk that ends with fewer results than exist (a predicate subgraph cut off from the
    // matches) is finished exactly as well: never fewer than min(k, matches) results.
    const size_t found = finished ? results.size() : 0;
    if (!finished || found < std::min(k, matches)) {
      *plan = int8_t(FilterPlan::kExactFallback);
      exact = true;
    }
  }
  if (exact) {
    results.reset(k);
    *scored += int64_t(exact_scan_bitset(store_, deleted_.data(), n_slots_, filter.bits,
                                         filter.words, q, results, s.ids, s.dists));
  }
  const auto& sorted = results.sorted();
  const size_t n = std::min(k, sorted.size());
  for (size_t i = 0; i < n; ++i) {
    out_labels[i] = labels_[sorted[i].id];
    out_dists[i] = sorted[i].dist;
  }
}

template <class Store>
bool HnswIndexT<Store>::acorn_walk(const Query* q, uint32_t entry, size_t ef, const SlotFilter& filter,
                           size_t n_seeds, size_t budget, Scratch& s, int64_t* scored) const {
  VisitedSet& visited = *s.visited;
  visited.prepare(n_slots_);
  const size_t max_links = graph_.M0();
  const size_t cap = max_links;  // matching candidates gathered per expansion (ACORN's M)
  if (s.ids.size() < 2 * max_links + 1) {
    s.ids.resize(2 * max_links + 1);
    s.dists.resize(2 * max_links + 1);
  }
  const uint8_t* deleted = deleted_.data();
  auto ok = [&](uint32_t v) { return !deleted[v] && filter.allows(v); };
  s.pool.reset(ef);
  size_t work = 0;

  // Gathers the matching neighbours of `c` into s.ids. When fewer than M of them match, the
  // non-matching neighbours are looked through (two hops) until M0 candidates are found:
  // the predicate subgraph then keeps about the degree of the full graph.
  const size_t enough = graph_.M();
  std::vector<uint32_t>& failed = s.relink_ids;
  if (failed.size() < max_links) failed.resize(max_links);
  auto gather = [&](uint32_t c) -> size_t {
    const int32_t* ll = graph_.links(c, 0);
    const size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    size_t m = 0, n_failed = 0;
    for (size_t j = 0; j < cnt; ++j) {
      const uint32_t v = uint32_t(ll[1 + j]);
      if (visited.test_and_set(v)) continue;
      if (ok(v)) {
        s.ids[m++] = v;
      } else {
        failed[n_failed++] = v;
        __builtin_prefetch(graph_.links(v, 0), 0, 3);
      }
    }
    if (m >= enough) return m;
    for (size_t j = 0; j < n_failed && m < cap; ++j) {
      const int32_t* l2 = graph_.links(failed[j], 0);
      const size_t cnt2 = std::min<size_t>(size_t(l2[0]), max_links);
      ++work;  // one more link list read
      for (size_t t = 0; t < cnt2 && m < cap; ++t) {
        const uint32_t w = uint32_t(l2[1 + t]);
        if (!visited.test(w) && ok(w)) {
          visited.test_and_set(w);
          s.ids[m++] = w;
        }
      }
    }
    return m;
  };
  auto score = [&](size_t m) {
    if (m == 0) return;
    store_.distances(q, s.ids.data(), m, s.dists.data());
    for (size_t j = 0; j < m; ++j) s.pool.insert(s.ids[j], s.dists[j]);
    work += m;
    *scored += int64_t(m);
  };

  visited.test_and_set(entry);
  if (ok(entry)) {
    s.ids[0] = entry;
    score(1);
  }
  score(gather(entry));
  // Seeds spread over the matching set: reach matches that are far from the query.
  const size_t words = std::min(filter.words, bitset_words(n_slots_));
  size_t m = 0;
  for (size_t j = 0; j < n_seeds && words; ++j) {
    for (size_t w = j * words / n_seeds; w < words; ++w) {
      if (!filter.bits[w]) continue;
      const uint32_t v = uint32_t(w * 64 + size_t(__builtin_ctzll(filter.bits[w])));
      if (v < n_slots_ && !visited.test_and_set(v) && ok(v)) s.ids[m++] = v;
      break;
    }
  }
  score(m);
  while (s.pool.has_next()) {
    if (work > budget) return false;
    score(gather(s.pool.pop()));
  }
  return true;
}

template class HnswIndexT<RowStore>;
template class HnswIndexT<CodeStore>;

}  // namespace bitgraph
