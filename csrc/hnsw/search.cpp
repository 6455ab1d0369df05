// HNSW queries. The unfiltered walk (no tombstones, no filter) uses the linear pool and pays
// nothing for filtering; anything that restricts results goes through a separate walk that
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

struct AllowedAndNotDeleted {
  const uint8_t* deleted;
  const SlotFilter* filter;
  bool operator()(uint32_t slot) const { return !deleted[slot] && filter->allows(slot); }
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
  if (filter)
    search_filtered_layer0(q, cur, ef, AllowedAndNotDeleted{deleted_.data(), filter}, s, results);
  else
    search_filtered_layer0(q, cur, ef, NotDeleted{deleted_.data()}, s, results);
  const auto& sorted = results.sorted();
  size_t n = std::min(k, sorted.size());
  for (size_t i = 0; i < n; ++i) {
    out_labels[i] = labels_[sorted[i].id];
    out_dists[i] = sorted[i].dist;
  }
}

template <class Admissible>
void HnswIndex::search_filtered_layer0(const float* q, uint32_t entry, size_t /*ef*/,
                                       const Admissible& ok, Scratch& s, TopK& results) const {
  VisitedSet& visited = *s.visited;
  visited.prepare(n_slots_);
  const size_t max_links = graph_.M0();
  if (s.ids.size() < max_links) {
    s.ids.resize(max_links);
    s.dists.resize(max_links);
  }
  std::priority_queue<Scored, std::vector<Scored>, FartherFirst> frontier;
  float d0 = store_.distance(q, entry);
  visited.test_and_set(entry);
  frontier.push({d0, entry});
  if (ok(entry)) results.push(d0, entry);
  while (!frontier.empty()) {
    Scored c = frontier.top();
    if (results.full() && c.dist > results.worst()) break;
    frontier.pop();
    const int32_t* ll = graph_.links(c.id, 0);
    size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    size_t m = 0;
    for (size_t j = 0; j < cnt; ++j) {
      uint32_t v = uint32_t(ll[1 + j]);
      if (!visited.test_and_set(v)) s.ids[m++] = v;
    }
    if (m == 0) continue;
    store_.distances(q, s.ids.data(), m, s.dists.data());
    for (size_t j = 0; j < m; ++j) {
      float d = s.dists[j];
      if (!results.full() || d < results.worst()) {
        frontier.push({d, s.ids[j]});
        if (ok(s.ids[j])) results.push(d, s.ids[j]);
      }
    }
  }
}

}  // namespace bitgraph
