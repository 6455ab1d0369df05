// HNSW queries. The unfiltered walk (no tombstones, no filter) is the build's search_layer:
// the linear pool, nothing paid for filtering. Anything that restricts results (tombstones,
// a filter, the planner's post-filter plan) goes through the one restricted walk, which
// traverses every node but only admits allowed ones into the results.
#include <algorithm>
#include <limits>
#include <queue>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"

namespace bitgraph {

namespace {

struct NotDeleted {
  const uint8_t* deleted;
  bool operator()(uint32_t slot) const { return !deleted[slot]; }
};

struct FartherFirst {
  bool operator()(const Scored& a, const Scored& b) const { return a.dist > b.dist; }
};

}  // namespace

void HnswIndex::search(const float* queries, size_t nq, size_t k, size_t ef, size_t threads,
                       const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  for_each_query(nq, threads, [&](size_t i, Scratch& s) {
    search_one(queries + i * params_.dim, k, ef, filter, s, out_labels + i * k,
               out_dists + i * k);
  });
}

void HnswIndex::search_one(const float* q, size_t k, size_t ef, const SlotFilter* filter,
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
  TopK results;
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

template <class Admissible>
bool HnswIndex::restricted_walk(const float* q, uint32_t entry, const Admissible& ok,
                                size_t budget, Scratch& s, TopK& results,
                                int64_t* scored) const {
  VisitedSet& visited = *s.visited;
  visited.prepare(n_slots_);
  const size_t max_links = graph_.M0();
  if (s.ids.size() < max_links) {
    s.ids.resize(max_links);
    s.dists.resize(max_links);
  }
  std::priority_queue<Scored, std::vector<Scored>, FartherFirst> frontier;
  const float d0 = store_.distance(q, entry);
  size_t work = 1;
  visited.test_and_set(entry);
  frontier.push({d0, entry});
  if (ok(entry)) results.push(d0, entry);
  bool finished = true;
  while (!frontier.empty()) {
    const Scored c = frontier.top();
    if (results.full() && c.dist > results.worst()) break;
    if (work > budget) {
      finished = false;
      break;
    }
    frontier.pop();
    const int32_t* ll = graph_.links(c.id, 0);
    const size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    size_t m = 0;
    for (size_t j = 0; j < cnt; ++j) {
      const uint32_t v = uint32_t(ll[1 + j]);
      if (!visited.test_and_set(v)) s.ids[m++] = v;
    }
    if (m == 0) continue;
    store_.distances(q, s.ids.data(), m, s.dists.data());
    work += m;
    for (size_t j = 0; j < m; ++j) {
      const float d = s.dists[j];
      if (!results.full() || d < results.worst()) {
        frontier.push({d, s.ids[j]});
        if (ok(s.ids[j])) results.push(d, s.ids[j]);
      }
    }
  }
  if (scored) *scored += int64_t(work);
  return finished;
}

// The filtered planner's post-filter plan walks with a filter and a budget.
template bool HnswIndex::restricted_walk<HnswIndex::FilterAdmits>(
    const float*, uint32_t, const FilterAdmits&, size_t, Scratch&, TopK&, int64_t*) const;

}  // namespace bitgraph
